"""Activation codes: a clerk issues one from the member's page (the printable letter shows it once;
only its hash is stored); the member activates with ID number + code + a new password. Codes are
single use, expire after 7 days, are revoked by a newer code, and a wrong, used or expired code
answers exactly like an unknown ID number."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import is_password_usable
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from huzhu.core.models import AuditEvent
from huzhu.orgs.models import User
from huzhu.portal.models import ActivationCode, MemberAccount
from huzhu.portal.services import (
    PortalEvent,
    activate_account,
    issue_activation_code,
    validate_member_password,
)
from huzhu.portal.views import ACTIVATION_FAILED
from tests import factories
from tests.portal.conftest import PASSWORD, Portal

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Another-pass-77"
CODE_RE = re.compile(r"data-activation-code>([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})<")


def _issue_via_page(client: Client, member_id: int) -> str:
    response = client.post(reverse("portal:issue_activation", args=[member_id]))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    text = response.content.decode()
    assert "职工互助保障会员服务激活通知书" in text
    match = CODE_RE.search(text)
    assert match is not None
    return match.group(1)


def _activate(client: Client, id_number: str, code: str, password: str = NEW_PASSWORD) -> Any:
    return client.post(
        reverse("portal:activate"),
        {"id_number": id_number, "code": code, "password": password, "password2": password},
    )


def test_clerk_issues_a_letter_and_the_member_activates(
    portal: Portal, clerk_client: Client
) -> None:
    member = factories.member(portal.tree.grassroots_1, portal.tree.unit_1, name="赵敏")
    number = str(member.id_number_enc)
    page = clerk_client.get(reverse("members:detail", args=[member.pk]))
    assert "生成会员服务激活码" in page.content.decode()
    code = _issue_via_page(clerk_client, member.pk)
    stored = ActivationCode.objects.get(member=member)
    # Only a hash is stored; the expiry is 7 days; the clerk is recorded.
    assert code.replace("-", "") not in stored.code_hash and stored.code_hash.startswith("argon2")
    assert stored.expires_at - stored.issued_at == timedelta(days=7)
    assert stored.issued_by == portal.clerk and stored.used_at is None
    account = MemberAccount.objects.get(member=member)
    assert not account.is_activated and not is_password_usable(account.password)
    issued = AuditEvent.objects.get(event=PortalEvent.CODE_ISSUED, object_id=str(member.pk))
    assert issued.actor_username == "portal_clerk" and code not in str(issued.detail)

    visitor = Client()
    response = _activate(visitor, number, code.lower())  # case and dashes do not matter
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")
    home = visitor.get(reverse("portal:home"))
    assert home.status_code == 200 and "赵敏" in home.content.decode()
    account.refresh_from_db()
    stored.refresh_from_db()
    assert account.is_activated and stored.used_at is not None
    event = AuditEvent.objects.get(
        event=PortalEvent.ACTIVATED, actor_username=f"member:{member.pk}"
    )
    assert event.channel == "portal" and event.organisation_id == member.union_id


def test_a_code_works_once(portal: Portal, clerk_client: Client) -> None:
    code = _issue_via_page(clerk_client, portal.member.pk)
    assert _activate(Client(), portal.id_number, code).status_code == 302
    account = portal.account
    again = _activate(Client(), portal.id_number, code, password="Third-pass-2026")
    assert again.status_code == 200
    assert ACTIVATION_FAILED in again.content.decode()
    assert portal.account.password == account.password  # unchanged by the second use


def test_an_expired_code_is_refused(portal: Portal) -> None:
    issued = issue_activation_code(acting_user=portal.clerk, member=portal.member)
    ActivationCode.objects.filter(used_at__isnull=True).update(
        expires_at=timezone.now() - timedelta(seconds=1),
        issued_at=timezone.now() - timedelta(days=7, seconds=1),
    )
    before = portal.account.password
    result = activate_account(id_number=portal.id_number, code=issued.code, password=NEW_PASSWORD)
    assert result.outcome == "failed"
    assert portal.account.password == before
    assert ActivationCode.objects.filter(used_at__isnull=False).count() == 1  # the fixture's


def test_a_newer_code_revokes_the_older_one(portal: Portal) -> None:
    first = issue_activation_code(acting_user=portal.clerk, member=portal.member)
    second = issue_activation_code(acting_user=portal.clerk, member=portal.member)
    assert (
        activate_account(id_number=portal.id_number, code=first.code, password=NEW_PASSWORD).outcome
        == "failed"
    )
    assert activate_account(id_number=portal.id_number, code=second.code, password=NEW_PASSWORD).ok


def test_wrong_code_and_unknown_id_answer_alike(portal: Portal) -> None:
    issue_activation_code(acting_user=portal.clerk, member=portal.member)
    unknown = factories.id_number(date(1990, 2, 3))
    wrong_code = _activate(Client(), portal.id_number, "ABCD-EFGH-JKMN")
    no_account = _activate(Client(), unknown, "ABCD-EFGH-JKMN")
    bodies = [
        re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", r.content.decode())
        for r in (wrong_code, no_account)
    ]
    assert wrong_code.status_code == no_account.status_code == 200
    assert bodies[0] == bodies[1] and ACTIVATION_FAILED in bodies[0]
    # The typed ID number is never rendered back.
    assert portal.id_number not in bodies[0] and unknown not in bodies[1]
    assert AuditEvent.objects.filter(event=PortalEvent.ACTIVATION_FAILED).count() == 2


def test_password_policy(portal: Portal) -> None:
    number = portal.id_number
    assert validate_member_password("short1A", number) == ["密码至少10位"]
    assert validate_member_password("onlylowercaseletters", number) == [
        "密码须包含大写字母、小写字母、数字、符号中的至少两类"
    ]
    assert validate_member_password(f"x{number}", number) == [
        "密码不能包含身份证号码（或其后六位）"
    ]
    assert validate_member_password(f"Secret-{number[-6:]}", number) == [
        "密码不能包含身份证号码（或其后六位）"
    ]
    assert validate_member_password("Password123", number) == ["密码过于常见，请换一个"]
    assert validate_member_password(PASSWORD, number) == []


def test_a_weak_password_changes_nothing_and_keeps_the_code(
    portal: Portal, clerk_client: Client
) -> None:
    code = _issue_via_page(clerk_client, portal.member.pk)
    before = portal.account.password
    response = _activate(Client(), portal.id_number, code, password="abcdefghij")
    assert response.status_code == 422
    assert "至少两类" in response.content.decode()
    assert portal.account.password == before
    assert ActivationCode.objects.filter(used_at__isnull=True, revoked_at__isnull=True).count() == 1
    assert _activate(Client(), portal.id_number, code).status_code == 302


def test_only_a_clerk_in_scope_issues_codes(
    portal: Portal, staff_login: Callable[[User], Client]
) -> None:
    sibling_clerk = factories.staff(portal.tree.county_a2, "clerk")
    reviewer = factories.staff(portal.tree.county_a1, "reviewer")
    count = ActivationCode.objects.count()
    for user in (sibling_clerk, reviewer):
        client = staff_login(user)
        response = client.post(reverse("portal:issue_activation", args=[portal.member.pk]))
        assert response.status_code == 404
    assert (
        Client().post(reverse("portal:issue_activation", args=[portal.member.pk])).status_code
        == 302
    )
    assert ActivationCode.objects.count() == count
