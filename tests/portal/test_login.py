"""Member login (S2): ID number + password; an unknown ID number, a wrong password and an account
not activated answer alike; 5 failures within 15 minutes lock for 30 minutes — for an unknown ID
number exactly as for a known one; every login, failure and lockout is audited without the ID
number; logout destroys the server-side session."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from huzhu.core.models import AuditEvent
from huzhu.portal.models import LoginThrottle, MemberAccount
from huzhu.portal.services import PortalEvent, authenticate_member, issue_activation_code
from huzhu.portal.views import LOCKED, LOGIN_FAILED
from tests import factories
from tests.portal.conftest import PASSWORD, Portal

pytestmark = pytest.mark.django_db

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def _post(client: Client, id_number: str, password: str) -> Any:
    return client.post(reverse("portal:login"), {"id_number": id_number, "password": password})


def _body(response: Any) -> str:
    return _CSRF.sub("", response.content.decode())


def test_login_and_logout(portal: Portal) -> None:
    client = Client()
    response = _post(client, portal.id_number, PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")
    key = client.session.session_key
    assert Session.objects.filter(session_key=key).exists()
    account = portal.account
    assert account.last_login_at is not None and account.failed_attempts == 0
    login = AuditEvent.objects.get(event=PortalEvent.LOGIN)
    assert login.actor_username == f"member:{portal.member.pk}" and login.actor_id is None
    assert login.channel == "portal" and login.object_id == str(account.pk)

    out = client.post(reverse("portal:logout"))
    assert out.status_code == 302 and out["Location"] == reverse("portal:login")
    assert not Session.objects.filter(session_key=key).exists()
    assert client.get(reverse("portal:home")).status_code == 302
    logout = AuditEvent.objects.get(event=PortalEvent.LOGOUT)
    assert logout.actor_username == f"member:{portal.member.pk}"


def test_login_is_required_and_returns_to_the_page(portal: Portal) -> None:
    client = Client()
    response = client.get(reverse("portal:receipts"))
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:login") + "?next=%2Fportal%2Freceipts%2F"
    done = client.post(
        reverse("portal:login"),
        {"id_number": portal.id_number, "password": PASSWORD, "next": reverse("portal:receipts")},
    )
    assert done["Location"] == reverse("portal:receipts")
    # Never to another site, nor to a staff page.
    for target in ("https://evil.example/", reverse("members:list")):
        again = Client().post(
            reverse("portal:login"),
            {"id_number": portal.id_number, "password": PASSWORD, "next": target},
        )
        assert again["Location"] == reverse("portal:home")


def test_unknown_id_wrong_password_and_inactive_account_answer_alike(portal: Portal) -> None:
    not_activated = factories.member(portal.tree.grassroots_1, portal.tree.unit_1, name="钱芳")
    issue_activation_code(acting_user=portal.clerk, member=not_activated)
    unknown = factories.id_number(date(1991, 7, 7))
    answers = [
        _post(Client(), portal.id_number, "Wrong-pass-2026"),
        _post(Client(), unknown, "Wrong-pass-2026"),
        _post(Client(), str(not_activated.id_number_enc), "Wrong-pass-2026"),
        _post(Client(), "not an id", "Wrong-pass-2026"),
    ]
    assert {r.status_code for r in answers} == {200}
    bodies = {_body(r) for r in answers}
    assert len(bodies) == 1 and LOGIN_FAILED in bodies.pop()
    for response, typed in zip(answers, (portal.id_number, unknown), strict=False):
        assert typed not in response.content.decode()  # the ID number is not rendered back
    failures = AuditEvent.objects.filter(event=PortalEvent.LOGIN_FAILED).order_by("pk")
    assert [e.detail["reason"] for e in failures] == ["password", "unknown", "inactive", "unknown"]
    assert [e.actor_username for e in failures] == [
        f"member:{portal.member.pk}",
        "",
        f"member:{not_activated.pk}",
        "",
    ]
    assert all(e.outcome == "failure" for e in failures)
    texts = " ".join(str(e.detail) + e.actor_username + e.object_id for e in failures)
    assert portal.id_number not in texts and unknown not in texts


def test_five_failures_lock_known_and_unknown_alike(portal: Portal) -> None:
    unknown = factories.id_number(date(1992, 9, 9))
    known_answers, unknown_answers = [], []
    for _ in range(5):
        known_answers.append(_post(Client(), portal.id_number, "Wrong-pass-2026"))
        unknown_answers.append(_post(Client(), unknown, "Wrong-pass-2026"))
    for known, other in zip(known_answers, unknown_answers, strict=True):
        assert known.status_code == other.status_code and _body(known) == _body(other)
    assert [r.status_code for r in known_answers] == [200, 200, 200, 200, 429]
    assert LOCKED in _body(known_answers[-1])
    # Locked: even the right password is refused, with the same answer as for the unknown ID.
    right = _post(Client(), portal.id_number, PASSWORD)
    other = _post(Client(), unknown, PASSWORD)
    assert right.status_code == other.status_code == 429 and _body(right) == _body(other)
    assert portal.account.last_login_at is None
    lockouts = AuditEvent.objects.filter(event=PortalEvent.LOCKOUT)
    assert sorted(e.actor_username for e in lockouts) == ["", f"member:{portal.member.pk}"]
    assert LoginThrottle.objects.count() == 1


def test_the_lock_ends_after_thirty_minutes(portal: Portal) -> None:
    for _ in range(5):
        authenticate_member(id_number=portal.id_number, password="Wrong-pass-2026")
    account = portal.account
    assert account.locked_until is not None
    assert account.locked_until - timezone.now() > timedelta(minutes=29)
    assert authenticate_member(id_number=portal.id_number, password=PASSWORD).outcome == "locked"
    MemberAccount.objects.filter(pk=account.pk).update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )
    assert authenticate_member(id_number=portal.id_number, password=PASSWORD).ok
    assert portal.account.locked_until is None


def test_failures_older_than_fifteen_minutes_do_not_count(portal: Portal) -> None:
    for _ in range(4):
        authenticate_member(id_number=portal.id_number, password="Wrong-pass-2026")
    MemberAccount.objects.filter(pk=portal.account.pk).update(
        first_failed_at=timezone.now() - timedelta(minutes=16)
    )
    result = authenticate_member(id_number=portal.id_number, password="Wrong-pass-2026")
    assert result.outcome == "failed"
    assert portal.account.failed_attempts == 1 and portal.account.locked_until is None


def test_a_success_clears_the_failures(portal: Portal) -> None:
    for _ in range(4):
        authenticate_member(id_number=portal.id_number, password="Wrong-pass-2026")
    assert authenticate_member(id_number=portal.id_number, password=PASSWORD).ok
    for _ in range(4):
        assert (
            authenticate_member(id_number=portal.id_number, password="Wrong-pass-2026").outcome
            == "failed"
        )


def test_a_disabled_account_cannot_log_in(portal: Portal) -> None:
    MemberAccount.objects.filter(pk=portal.account.pk).update(is_active=False)
    response = _post(Client(), portal.id_number, PASSWORD)
    assert response.status_code == 200 and LOGIN_FAILED in _body(response)


def test_the_forms_carry_csrf_tokens(portal: Portal) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("portal:login"))
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    assert page["Cache-Control"].startswith("max-age=0") or "no-store" in page["Cache-Control"]
    refused = client.post(
        reverse("portal:login"), {"id_number": portal.id_number, "password": PASSWORD}
    )
    assert refused.status_code == 403
    assert portal.account.last_login_at is None
