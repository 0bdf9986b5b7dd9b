"""Fixtures for the member portal tests: a member of grassroots_1 (芙蓉区) with a phone and a bank
account, an activated portal account (through the real code-and-activation flow), receipts paid
by the member and by another member, a logged-in member client and a county clerk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from huzhu.contributions.receipt_models import PayerKind, Receipt
from huzhu.contributions.receipt_services import allocate_range, issue_receipt
from huzhu.members.models import Member
from huzhu.orgs.models import User
from huzhu.portal.models import MemberAccount
from huzhu.portal.services import activate_account, issue_activation_code
from tests import factories
from tests.web.conftest import login_verified

PASSWORD = "Mutual-aid-2026"  # the member's own portal password (≥ 10, 2 classes)
PHONE = "13912345678"
ACCOUNT = "6222020200112233445"


@dataclass
class Portal:
    tree: factories.Tree
    clerk: User  # county_a1 (芙蓉区) clerk: grassroots_1 is in scope
    member: Member  # grassroots_1, activated portal account
    id_number: str
    other: Member  # grassroots_2 (天心区): another member with a receipt of their own
    other_id_number: str
    receipts: list[Receipt]  # the member's
    other_receipt: Receipt

    @property
    def account(self) -> MemberAccount:
        return MemberAccount.objects.get(member=self.member)


def activate(clerk: User, member: Member, id_number: str, password: str = PASSWORD) -> None:
    issued = issue_activation_code(acting_user=clerk, member=member)
    result = activate_account(id_number=id_number, code=issued.code, password=password)
    assert result.ok


def member_receipt(issuer: object, member: Member, source_id: str, amount_fen: int) -> Receipt:
    return issue_receipt(
        acting_user=None,
        issuer=issuer,  # type: ignore[arg-type]
        payer_name=member.name,
        payer_kind=PayerKind.INDIVIDUAL,
        payer_reference=member.id_number_masked,
        items=[("2026年度家庭成员住院互助金（职工个人缴纳）", amount_fen)],
        total_fen=amount_fen,
        issued_on=timezone.localdate(),
        source_type="test.portal",
        source_id=source_id,
        payer=member,
    )


@pytest.fixture
def portal(tree: factories.Tree) -> Portal:
    clerk = factories.staff(tree.county_a1, "clerk", username="portal_clerk")
    number = factories.id_number(date(1986, 4, 9))
    member = factories.member(
        tree.grassroots_1,
        tree.unit_1,
        name="李秀英",
        number=number,
        phone=PHONE,
        bank_account=ACCOUNT,
    )
    other_number = factories.id_number(date(1979, 8, 1))
    other = factories.member(tree.grassroots_2, tree.unit_2, name="王建国", number=other_number)
    activate(clerk, member, number)
    year = timezone.localdate().year
    allocate_range(
        acting_user=None,
        issuer=tree.city_a,
        code=f"430301{year % 100:02d}",
        year=year,
        first_number="1",
        last_number="100",
    )
    receipts = [
        member_receipt(tree.city_a, member, "portal-1", 6000),
        member_receipt(tree.city_a, member, "portal-2", 12000),
    ]
    other_receipt = member_receipt(tree.city_a, other, "portal-other", 6000)
    return Portal(tree, clerk, member, number, other, other_number, receipts, other_receipt)


def login_member(client: Client, id_number: str, password: str = PASSWORD) -> Client:
    response = client.post(reverse("portal:login"), {"id_number": id_number, "password": password})
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")
    return client


@pytest.fixture
def member_client(portal: Portal) -> Client:
    return login_member(Client(), portal.id_number)


@pytest.fixture
def clerk_client(portal: Portal) -> Client:
    return login_verified(Client(), portal.clerk)


@pytest.fixture
def staff_login() -> Callable[[User], Client]:
    return lambda user: login_verified(Client(), user)
