"""The minimum chart of accounts of RULES.md §7, as data.

Receivables and payables name their party (辅助核算): 1122 the payer (unit, union or member), 2241
the member, 2242 the hospital. The bank account and the risk reserve may never go negative (S15:
"the fund and the reserve never go negative silently").
"""

from typing import Any

from django.db import migrations

# code, name, kind, normal side, party types, may be negative
CHART = [
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


def seed(apps: Any, schema_editor: Any) -> None:
    Account = apps.get_model("ledger", "Account")
    for code, name, kind, side, parties, may_be_negative in CHART:
        Account.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "kind": kind,
                "normal_side": side,
                "party_types": parties,
                "may_be_negative": may_be_negative,
            },
        )


def unseed(apps: Any, schema_editor: Any) -> None:
    apps.get_model("ledger", "Account").objects.filter(code__in=[c[0] for c in CHART]).delete()


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
