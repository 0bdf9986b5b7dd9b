"""The minimum chart of accounts of RULES.md §7.

Seeded by migration ``0002_chart_of_accounts`` (its own frozen copy) and re-ensured after every
``migrate`` and every ``flush`` (``post_migrate``, see ``apps.py``): a flush — what a
``transaction=True`` test does at its end — empties every table, the chart with it, and the ledger
cannot post without it.
"""

from __future__ import annotations

from typing import Any

from django.db import connections

# code, name, kind, normal side, party types, may be negative
CHART: list[tuple[str, str, str, str, str, bool]] = [
    ("1001", "互助金专户存款", "asset", "debit", "", False),
    ("1122", "应收互助金", "asset", "debit", "unit,union,member", True),
    ("2241", "应付补助金", "liability", "credit", "member", True),
    ("2242", "应付医疗机构垫付款", "liability", "credit", "hospital", True),
    ("3001", "互助基金", "equity", "credit", "", True),
    ("3101", "风险储备金", "equity", "credit", "", False),
    ("4001", "互助金收入", "income", "credit", "", True),
    ("4002", "工会补助收入", "income", "credit", "", True),
    ("5001", "补助支出", "expense", "debit", "", True),
    ("5101", "运营成本", "expense", "debit", "", True),
    ("5201", "健康服务支出", "expense", "debit", "", True),
]


def ensure_chart(sender: Any = None, *, using: str = "default", **kwargs: Any) -> None:
    """Create the accounts that are missing (never changes an existing one)."""
    apps = kwargs.get("apps")
    account_model: Any
    if apps is None:
        from huzhu.ledger.models import Account as account_model
    else:
        try:
            account_model = apps.get_model("ledger", "Account")
        except LookupError:  # the ledger's migrations are not applied ("migrate ledger zero")
            return
    if account_model._meta.db_table not in connections[using].introspection.table_names():
        return
    account_model.objects.using(using).bulk_create(
        [
            account_model(
                code=code,
                name=name,
                kind=kind,
                normal_side=side,
                party_types=parties,
                may_be_negative=may_be_negative,
            )
            for code, name, kind, side, parties, may_be_negative in CHART
        ],
        ignore_conflicts=True,
    )
