"""Fixtures for the e-receipt tests: a union tree, a finance account at 长沙市总工会 and a range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from huzhu.contributions.receipt_models import PayerKind, Receipt, ReceiptRange
from huzhu.contributions.receipt_services import allocate_range, issue_receipt
from huzhu.orgs.models import Union, Unit, User
from tests import factories


@dataclass
class ReceiptWorld:
    tree: factories.Tree
    finance: User  # 长沙市总工会 finance (receipt.view + receipt.issue)
    range_: ReceiptRange  # 长沙市总工会, this year, 0000000001..0000001000
    today: date

    @property
    def issuer(self) -> Union:
        return self.tree.city_a

    def issue(
        self,
        source_id: str,
        *,
        amount_fen: int = 12000,
        unit: Unit | None = None,
        issuer: Union | None = None,
        acting_user: User | None = None,
        system: bool = False,
    ) -> Receipt:
        payer = unit or self.tree.unit_1
        return issue_receipt(
            acting_user=None if system else (acting_user or self.finance),
            issuer=issuer or self.issuer,
            payer_name=payer.name,
            payer_kind=PayerKind.UNIT,
            payer_reference=payer.uscc,
            items=[("单位承担互助金", amount_fen)],
            total_fen=amount_fen,
            issued_on=self.today,
            source_type="test.payment",
            source_id=source_id,
            payer=payer,
        )


def code_for(year: int, region: str = "43") -> str:
    return f"{region}0301{year % 100:02d}"


@pytest.fixture
def world(tree: factories.Tree) -> ReceiptWorld:
    finance = factories.staff(tree.city_a, "finance", username="cs_finance")
    today = timezone.localdate()
    range_ = allocate_range(
        acting_user=finance,
        issuer=tree.city_a,
        code=code_for(today.year),
        year=today.year,
        first_number="1",
        last_number="1000",
        platform_reference="湘财票〔2026〕1号",
    )
    return ReceiptWorld(tree=tree, finance=finance, range_=range_, today=today)


def login(user: User) -> Client:
    """A client with a full staff session: password login plus a verified second factor."""
    device = TOTPDevice.objects.create(user=user, name="测试验证器", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture(autouse=True)
def _fresh_rate_limit_counters() -> None:
    """The verification page counts requests per IP in the cache; every test starts at zero."""
    cache.clear()
