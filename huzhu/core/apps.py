from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "huzhu.core"
    label = "core"
    verbose_name = "基础"

    def ready(self) -> None:
        from huzhu.core.logging import install_masking_record_factory
        from huzhu.core.triggers import ensure_sqlite_guards

        install_masking_record_factory()

        post_migrate.connect(ensure_sqlite_guards, dispatch_uid="huzhu.core.sqlite_guards")
