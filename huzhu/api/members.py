"""Members (/members): scoped through ``huzhu.members.selectors`` and ``access_member`` (S5),
shown masked with the minimum necessary fields (S7, S11).

The list uses keyset pagination (``after`` = the ``next`` of the previous page, newest first) and
never counts rows: a province has millions of members.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Status

from huzhu.api.auth import actor_of, staff
from huzhu.api.errors import reject_unknown_query
from huzhu.api.orgs import union_in_scope
from huzhu.api.schemas import (
    ERRORS_LIST,
    ERRORS_READ,
    ERRORS_WRITE,
    MemberCreateIn,
    MemberDetailOut,
    MemberPage,
    MemberUpdateIn,
)
from huzhu.members import selectors, services
from huzhu.members.access import access_member
from huzhu.members.models import EmploymentType, Member
from huzhu.members.services import MemberInput
from huzhu.orgs.models import Union, User
from huzhu.orgs.roles import Perm

router = Router(tags=["职工"])

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def _annotated(qs: QuerySet[Member], today: date) -> QuerySet[Member]:
    return qs.annotate(
        hardship_now=selectors.hardship_on(today), consent_active=selectors.active_consent()
    )


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def member_out(member: Member, today: date, *, detail: bool = False) -> dict[str, Any]:
    """The field matrix of the API (S7): masked identifiers only, no birth date, no diagnosis."""
    data: dict[str, Any] = {
        "id": member.pk,
        "name": member.name,
        "id_number_masked": member.id_number_masked,
        "sex": member.sex,
        "age": age_on(member.birth_date, today),
        "unit": {"id": member.unit.pk, "name": member.unit.name} if member.unit else None,
        "union": {"id": member.union.pk, "name": member.union.name},
        "employment_type": member.employment_type,
        "retirement_category": member.retirement_category,
        "retirement_date": member.retirement_date,
        "hardship_now": bool(getattr(member, "hardship_now", False)),
        "consent_active": bool(getattr(member, "consent_active", False)),
    }
    if detail:
        data.update(
            phone_masked=member.phone_masked,
            bank_account_masked=member.bank_account_masked,
            bank_name=member.bank_name,
        )
    return data


def _detail(actor: User, member_id: int, today: date) -> dict[str, Any]:
    member = _annotated(
        selectors.members_for(actor).select_related("unit", "union").filter(pk=member_id), today
    ).get()
    return member_out(member, today, detail=True)


@router.get(
    "",
    response={200: MemberPage, **ERRORS_LIST},
    url_name="member-list",
    summary="职工列表（本组织及下级，最新登记在前）",
    **staff(Perm.MEMBER_VIEW, collection=True),
)
def list_members(
    request: HttpRequest,
    q: str = Query("", max_length=50, description="姓名前缀，或完整的18位身份证号码"),
    unit_id: int | None = None,
    employment_type: EmploymentType | None = None,
    hardship: bool | None = Query(None, description="true：今天为困难职工；false：不是"),
    after: int | None = Query(None, ge=1, description="上一页答复中的 next"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, object]:
    reject_unknown_query(request, {"q", "unit_id", "employment_type", "hardship", "after", "limit"})
    actor = actor_of(request)
    today = timezone.localdate()
    flt = selectors.MemberFilter(
        q=q,
        unit_id=unit_id,
        employment_type=employment_type.value if employment_type else "",
        hardship=hardship,
    )
    qs = selectors.search_members(actor, flt, today=today)
    page = selectors.page_members(qs, after=after, before=None, size=limit)
    selectors.attach_flags(page.rows, today=today)
    return {
        "items": [member_out(m, today) for m in page.rows],
        "next": page.next_cursor,
    }


@router.get(
    "/{member_id}",
    response={200: MemberDetailOut, **ERRORS_READ},
    url_name="member-detail",
    summary="职工详情（脱敏）",
    **staff(Perm.MEMBER_VIEW),
)
def get_member(request: HttpRequest, member_id: int) -> dict[str, Any]:
    actor = actor_of(request)
    member = access_member(actor, member_id, Perm.MEMBER_VIEW)
    return _detail(actor, member.pk, timezone.localdate())


def _input(payload: MemberCreateIn | MemberUpdateIn) -> MemberInput:
    return MemberInput(
        name=payload.name,
        id_number=payload.id_number,
        employment_type=payload.employment_type.value,
        retirement_category=(
            payload.retirement_category.value if payload.retirement_category else ""
        ),
        phone=payload.phone or "",
        bank_account=payload.bank_account or "",
        bank_name=payload.bank_name or "",
        unit_id=payload.unit_id,
    )


@router.post(
    "",
    response={201: MemberDetailOut, **ERRORS_WRITE},
    url_name="member-list",
    summary="登记职工",
    **staff(Perm.MEMBER_EDIT, collection=True),
)
def create_member(request: HttpRequest, payload: MemberCreateIn) -> Status[dict[str, Any]]:
    actor = actor_of(request)
    union: Union
    if payload.union_id is None:
        union = union_in_scope(actor, actor.organisation_id or 0)
    else:
        union = union_in_scope(actor, payload.union_id)
    member = services.create_member(acting_user=actor, union=union, data=_input(payload))
    return Status(201, _detail(actor, member.pk, timezone.localdate()))


@router.put(
    "/{member_id}",
    response={200: MemberDetailOut, **ERRORS_WRITE},
    url_name="member-detail",
    summary="修改职工（整体替换）",
    **staff(Perm.MEMBER_EDIT),
)
def update_member(request: HttpRequest, member_id: int, payload: MemberUpdateIn) -> dict[str, Any]:
    actor = actor_of(request)
    member = access_member(actor, member_id, Perm.MEMBER_EDIT)
    services.update_member(acting_user=actor, member=member, data=_input(payload))
    return _detail(actor, member.pk, timezone.localdate())
