from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "huzhu.orgs"
    label = "orgs"
    verbose_name = "组织与账号"

    def ready(self) -> None:
        from huzhu.orgs import signals  # noqa: F401  (login/lockout audit receivers)
