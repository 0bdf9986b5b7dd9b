"""Staff side of the portal: the correction requests of the members in the user's subtree, marked
done or rejected by a clerk (the correction itself is made in the member's edit screen); the
requested phone or account is masked unless a clerk states a reason (audited)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from huzhu.core.audit import Event
from huzhu.core.models import AuditEvent
from huzhu.orgs.models import User
from huzhu.portal.models import CorrectionRequest, CorrectionStatus
from huzhu.portal.services import PortalEvent, request_correction
from tests import factories
from tests.portal.conftest import Portal

pytestmark = pytest.mark.django_db

NEW_PHONE = "13700001111"


@pytest.fixture
def requests_(portal: Portal) -> tuple[CorrectionRequest, CorrectionRequest]:
    own = request_correction(
        member=portal.member, field="phone", value=NEW_PHONE, reason="手机号码已更换"
    )
    other = request_correction(
        member=portal.other, field="name", value="王建军", reason="姓名登记有误"
    )
    return own, other


def test_the_list_is_scoped(
    portal: Portal,
    requests_: tuple[CorrectionRequest, CorrectionRequest],
    clerk_client: Client,
    staff_login: Callable[[User], Client],
) -> None:
    own, other = requests_
    text = clerk_client.get(reverse("portal:staff_corrections")).content.decode()
    assert portal.member.name in text and "137****1111" in text and NEW_PHONE not in text
    assert portal.other.name not in text and "王建军" not in text
    city = staff_login(factories.staff(portal.tree.city_a, "reviewer"))
    both = city.get(reverse("portal:staff_corrections")).content.decode()
    assert portal.member.name in both and portal.other.name in both
    # Only those who may handle a request get the link to it (a reviewer would get a 404).
    link = reverse("portal:staff_correction", args=[own.pk])
    assert link in text and link not in both
    # Out of scope: 404, like every object outside the subtree (S5).
    assert clerk_client.get(reverse("portal:staff_correction", args=[other.pk])).status_code == 404
    assert clerk_client.get(reverse("portal:staff_correction", args=[own.pk])).status_code == 200
    done = clerk_client.get(reverse("portal:staff_corrections") + "?status=done").content
    assert portal.member.name not in done.decode()


def test_mark_done_and_rejected(
    portal: Portal,
    requests_: tuple[CorrectionRequest, CorrectionRequest],
    clerk_client: Client,
    member_client: Client,
) -> None:
    own, _ = requests_
    url = reverse("portal:staff_correction", args=[own.pk])
    page = clerk_client.get(url).content.decode()
    assert reverse("members:edit", args=[portal.member.pk]) in page  # the change is made there
    refused = clerk_client.post(url, {"status": "rejected", "note": ""})
    assert refused.status_code == 422 and "须说明原因" in refused.content.decode()
    own.refresh_from_db()
    assert own.status == CorrectionStatus.PENDING and own.handled_at is None
    response = clerk_client.post(url, {"status": "done", "note": "已在职工信息中修改"})
    assert response.status_code == 302
    own.refresh_from_db()
    assert own.status == CorrectionStatus.DONE and own.handled_by == portal.clerk
    assert own.handled_at is not None and own.note == "已在职工信息中修改"
    again = clerk_client.post(url, {"status": "rejected", "note": "重复处理测试"})
    assert again.status_code == 422 and "已处理" in again.content.decode()
    own.refresh_from_db()
    assert own.status == CorrectionStatus.DONE
    event = AuditEvent.objects.get(event=PortalEvent.CORRECTION_HANDLED)
    assert event.actor_username == "portal_clerk" and event.detail["status"] == "done"
    # The member sees the outcome and the note.
    text = member_client.get(reverse("portal:corrections")).content.decode()
    assert "已更正" in text and "已在职工信息中修改" in text


def test_only_a_clerk_handles(
    portal: Portal,
    requests_: tuple[CorrectionRequest, CorrectionRequest],
    staff_login: Callable[[User], Client],
) -> None:
    own, _ = requests_
    reviewer = staff_login(factories.staff(portal.tree.county_a1, "reviewer"))
    url = reverse("portal:staff_correction", args=[own.pk])
    assert reviewer.get(url).status_code == 404
    assert reviewer.post(url, {"status": "done", "note": "越权"}).status_code == 404
    own.refresh_from_db()
    assert own.status == CorrectionStatus.PENDING


def test_reveal_the_requested_value_with_a_reason(
    portal: Portal,
    requests_: tuple[CorrectionRequest, CorrectionRequest],
    clerk_client: Client,
) -> None:
    own, _ = requests_
    url = reverse("portal:staff_correction_reveal", args=[own.pk])
    assert clerk_client.get(url).status_code == 405
    short = clerk_client.post(url, {"reason": "看"})
    assert short.status_code == 422 and NEW_PHONE not in short.content.decode()
    assert not AuditEvent.objects.filter(event=Event.MEMBER_UNMASKED).exists()
    shown = clerk_client.post(url, {"reason": "核对后修改职工手机号码"})
    assert shown.status_code == 200 and shown["X-Huzhu-Reveal"] == "1"
    assert NEW_PHONE in shown.content.decode()
    event = AuditEvent.objects.get(event=Event.MEMBER_UNMASKED)
    assert event.detail["field"] == "correction.phone" and event.actor_username == "portal_clerk"
    assert NEW_PHONE not in str(event.detail)


def test_the_member_page_offers_the_activation_letter_to_clerks_only(
    portal: Portal, clerk_client: Client, staff_login: Callable[[User], Client]
) -> None:
    url = reverse("members:detail", args=[portal.member.pk])
    assert "生成会员服务激活码" in clerk_client.get(url).content.decode()
    reviewer = staff_login(factories.staff(portal.tree.county_a1, "reviewer"))
    assert "生成会员服务激活码" not in reviewer.get(url).content.decode()
