from django.apps import AppConfig


class ClaimsConfig(AppConfig):
    name = "huzhu.claims"
    label = "claims"
    verbose_name = "理赔与给付"

    def ready(self) -> None:
        from huzhu.claims import receivers  # noqa: F401  (connects the consent hook)
