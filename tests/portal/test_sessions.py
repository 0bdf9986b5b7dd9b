"""Member sessions (S4): 30 minutes idle / 12 hours absolute, flushed on the server when either
passes; a staff session never opens a member page and a member session never opens a staff page;
re-activation and disabling end a member's sessions; member pages are never cached."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from huzhu.core.models import AuditEvent
from huzhu.members.models import Consent, Member
from huzhu.portal.auth import MEMBER_KEY, SEEN_KEY, STARTED_KEY
from huzhu.portal.models import CorrectionRequest, MemberAccount
from huzhu.portal.services import activate_account, issue_activation_code
from tests.portal.conftest import PASSWORD, Portal, login_member

pytestmark = pytest.mark.django_db

MEMBER_PAGES = ("home", "receipts", "profile", "corrections", "consent")


def _shift(client: Client, key: str, seconds: int) -> None:
    session = client.session
    session[key] = int(session[key]) - seconds
    session.save()


def test_idle_timeout(member_client: Client) -> None:
    idle = settings.HUZHU_MEMBER_IDLE_SECONDS
    assert idle == 30 * 60
    _shift(member_client, SEEN_KEY, idle - 5)
    assert member_client.get(reverse("portal:home")).status_code == 200  # activity resets it
    _shift(member_client, SEEN_KEY, idle - 5)
    assert member_client.get(reverse("portal:home")).status_code == 200
    key = member_client.session.session_key
    _shift(member_client, SEEN_KEY, idle + 1)
    response = member_client.get(reverse("portal:home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:login"))
    assert not Session.objects.filter(session_key=key).exists()
    assert MEMBER_KEY not in member_client.session
    login = member_client.get(response["Location"])
    assert "您长时间未操作，已自动退出" in login.content.decode()


def test_absolute_timeout(member_client: Client) -> None:
    absolute = settings.HUZHU_MEMBER_ABSOLUTE_SECONDS
    assert absolute == 12 * 3600
    _shift(member_client, STARTED_KEY, absolute - 10)
    assert member_client.get(reverse("portal:home")).status_code == 200
    _shift(member_client, STARTED_KEY, 11)  # activity does not extend the absolute limit
    response = member_client.get(reverse("portal:home"))
    assert response.status_code == 302
    assert MEMBER_KEY not in member_client.session


def test_member_pages_are_not_cached(member_client: Client) -> None:
    for name in MEMBER_PAGES:
        response = member_client.get(reverse(f"portal:{name}"))
        assert response.status_code == 200, name
        assert response["Cache-Control"] == "no-store", name


def test_a_staff_session_cannot_open_member_pages(portal: Portal, clerk_client: Client) -> None:
    for name in MEMBER_PAGES:
        response = clerk_client.get(reverse(f"portal:{name}"))
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("portal:login"))
    pdf = clerk_client.get(reverse("portal:receipt_pdf", args=[portal.receipts[0].pk]))
    assert pdf.status_code == 302
    # Not even a session that holds the member's keys as well as a staff login.
    session = clerk_client.session
    session[MEMBER_KEY] = portal.member.pk
    session.save()
    assert clerk_client.get(reverse("portal:home")).status_code == 302
    assert MEMBER_KEY not in clerk_client.session
    assert clerk_client.get(reverse("members:list")).status_code == 200  # still staff


def test_a_staff_session_cannot_write_as_a_member(portal: Portal, clerk_client: Client) -> None:
    session = clerk_client.session
    session[MEMBER_KEY] = portal.member.pk
    session.save()
    before = AuditEvent.objects.count()
    grant = clerk_client.post(reverse("portal:consent_grant"), {"agree": "1"})
    correction = clerk_client.post(
        reverse("portal:corrections"),
        {"field": "name", "value": "冒名更正", "reason": "工作人员冒用会员身份"},
    )
    download = clerk_client.post(reverse("portal:data_download"))
    assert grant.status_code == correction.status_code == download.status_code == 302
    assert not Consent.objects.filter(member=portal.member).exists()
    assert not CorrectionRequest.objects.exists()
    assert AuditEvent.objects.count() == before


def test_a_member_session_cannot_open_staff_pages(portal: Portal, member_client: Client) -> None:
    for url in (
        reverse("web:dashboard"),
        reverse("members:list"),
        reverse("members:detail", args=[portal.member.pk]),
        reverse("contributions:receipt_pdf", args=[portal.receipts[0].pk]),
        reverse("portal:staff_corrections"),
        "/api/v1/members",
    ):
        response = member_client.get(url)
        assert response.status_code in (302, 401), url
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("web:login")), url
    assert member_client.get(reverse("portal:home")).status_code == 200


def test_a_member_login_ends_a_staff_session(portal: Portal, clerk_client: Client) -> None:
    login_member(clerk_client, portal.id_number)
    assert clerk_client.get(reverse("members:list")).status_code == 302
    assert clerk_client.get(reverse("portal:home")).status_code == 200


def test_reactivation_ends_other_sessions(portal: Portal, member_client: Client) -> None:
    issued = issue_activation_code(acting_user=portal.clerk, member=portal.member)
    assert member_client.get(reverse("portal:home")).status_code == 200  # a code alone: no change
    assert activate_account(
        id_number=portal.id_number, code=issued.code, password="Brand-new-2026"
    ).ok
    assert member_client.get(reverse("portal:home")).status_code == 302
    login_member(Client(), portal.id_number, "Brand-new-2026")
    assert (
        Client()
        .post(reverse("portal:login"), {"id_number": portal.id_number, "password": PASSWORD})
        .status_code
        == 200
    )  # the old password no longer works


def test_disabling_ends_access_at_the_next_request(portal: Portal, member_client: Client) -> None:
    MemberAccount.objects.filter(member=portal.member).update(is_active=False)
    assert member_client.get(reverse("portal:home")).status_code == 302
    MemberAccount.objects.filter(member=portal.member).update(is_active=True)
    client = login_member(Client(), portal.id_number)
    Member.objects.filter(pk=portal.member.pk).update(is_active=False)
    assert client.get(reverse("portal:home")).status_code == 302


def test_the_portal_logout_leaves_a_staff_session_alone(clerk_client: Client) -> None:
    assert clerk_client.post(reverse("portal:logout")).status_code == 302
    assert clerk_client.get(reverse("members:list")).status_code == 200
