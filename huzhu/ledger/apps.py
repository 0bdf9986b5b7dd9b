from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LedgerConfig(AppConfig):
    name = "huzhu.ledger"
    label = "ledger"
    verbose_name = "互助基金账务"

    def ready(self) -> None:
        from huzhu.ledger.chart import ensure_chart

        post_migrate.connect(ensure_chart, sender=self, dispatch_uid="huzhu.ledger.ensure_chart")
