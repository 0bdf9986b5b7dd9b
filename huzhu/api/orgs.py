"""Organisations (/orgs) and units (/units): scoped exactly like the staff UI, through
``huzhu.orgs.selectors`` and ``huzhu.orgs.access`` (S5, R16, R17)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Status

from huzhu.api.auth import actor_of, staff
from huzhu.api.errors import QueryInvalid, error_item, reject_unknown_query
from huzhu.api.schemas import (
    ERRORS_LIST,
    ERRORS_READ,
    ERRORS_WRITE,
    UnionOut,
    UnionPage,
    UnitIn,
    UnitOut,
    UnitPage,
)
from huzhu.core.errors import ErrorCode, InvalidInput
from huzhu.core.errors import FieldError as ServiceFieldError
from huzhu.orgs import selectors, services
from huzhu.orgs.access import access_union, access_unit
from huzhu.orgs.models import Union, UnionKind, Unit, User, subtree_q
from huzhu.orgs.roles import Perm

orgs_router = Router(tags=["组织"])
units_router = Router(tags=["单位"])

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
OUT_OF_SCOPE_UNION = "所选工会不存在或不在您的管辖范围内"


# --- organisations -----------------------------------------------------------------------------
@orgs_router.get(
    "",
    response={200: UnionPage, **ERRORS_LIST},
    url_name="org-list",
    summary="本组织及下级组织列表",
    **staff(Perm.ORG_VIEW, collection=True),
)
def list_orgs(
    request: HttpRequest,
    parent_id: int | None = None,
    kind: UnionKind | None = None,
    q: str = Query("", max_length=100, description="名称包含"),
    after: int | None = Query(None, ge=1, description="上一页答复中的 next"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, object]:
    reject_unknown_query(request, {"parent_id", "kind", "q", "after", "limit"})
    actor = actor_of(request)
    qs = selectors.unions_for(actor)
    if parent_id is not None:
        qs = qs.filter(parent_id=parent_id)
    if kind is not None:
        qs = qs.filter(kind=kind)
    if q.strip():
        qs = qs.filter(name__contains=q.strip())
    if after is not None:
        cursor = selectors.unions_for(actor).filter(pk=after).values_list("path", flat=True)
        path = cursor.first()
        if path is None:
            raise QueryInvalid([error_item(["query", "after"], "分页参数无效", "invalid")])
        qs = qs.filter(path__gt=path)
    rows = list(qs.order_by("path")[: limit + 1])
    return {"items": rows[:limit], "next": rows[limit - 1].pk if len(rows) > limit else None}


@orgs_router.get(
    "/{union_id}",
    response={200: UnionOut, **ERRORS_READ},
    url_name="org-detail",
    summary="组织详情",
    **staff(Perm.ORG_VIEW),
)
def get_org(request: HttpRequest, union_id: int) -> Union:
    return access_union(actor_of(request), union_id, Perm.ORG_VIEW)


# --- units -------------------------------------------------------------------------------------
def union_in_scope(actor: User, union_id: int, field: str = "union_id") -> Union:
    union = selectors.unions_for(actor).filter(pk=union_id).first()
    if union is None:
        raise InvalidInput([ServiceFieldError(field, OUT_OF_SCOPE_UNION, ErrorCode.NOT_FOUND)])
    return union


def _unit_queryset(actor: User) -> QuerySet[Unit]:
    return selectors.units_for(actor).select_related("union")


def _looks_like_uscc(text: str) -> bool:
    return len(text) == 18 and text.isalnum()


@units_router.get(
    "",
    response={200: UnitPage, **ERRORS_LIST},
    url_name="unit-list",
    summary="单位列表（本组织及下级）",
    **staff(Perm.UNIT_VIEW, collection=True),
)
def list_units(
    request: HttpRequest,
    q: str = Query("", max_length=100, description="单位名称包含，或完整的统一社会信用代码"),
    union_id: int | None = Query(None, description="该工会及其下级工会的单位"),
    after: int | None = Query(None, ge=1, description="上一页答复中的 next"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, object]:
    reject_unknown_query(request, {"q", "union_id", "after", "limit"})
    actor = actor_of(request)
    qs = _unit_queryset(actor)
    text = q.strip()
    if text:
        if _looks_like_uscc(text):
            qs = qs.filter(Q(uscc=text.upper()) | Q(name__contains=text))
        else:
            qs = qs.filter(name__contains=text)
    if union_id is not None:
        union = selectors.unions_for(actor).filter(pk=union_id).only("path").first()
        qs = qs.filter(subtree_q(union.path, "union_path")) if union else qs.none()
    if after is not None:
        qs = qs.filter(pk__gt=after)
    rows = list(qs.order_by("pk")[: limit + 1])
    return {"items": rows[:limit], "next": rows[limit - 1].pk if len(rows) > limit else None}


@units_router.get(
    "/{unit_id}",
    response={200: UnitOut, **ERRORS_READ},
    url_name="unit-detail",
    summary="单位详情",
    **staff(Perm.UNIT_VIEW),
)
def get_unit(request: HttpRequest, unit_id: int) -> Unit:
    return access_unit(actor_of(request), unit_id, Perm.UNIT_VIEW)


@units_router.post(
    "",
    response={201: UnitOut, **ERRORS_WRITE},
    url_name="unit-list",
    summary="新建单位",
    **staff(Perm.UNIT_EDIT, collection=True),
)
def create_unit(request: HttpRequest, payload: UnitIn) -> Status[Unit]:
    actor = actor_of(request)
    union = union_in_scope(actor, payload.union_id)
    unit = services.create_unit(
        acting_user=actor,
        union=union,
        name=payload.name,
        uscc=payload.uscc,
        address=payload.address,
        contact_name=payload.contact_name,
        industry=payload.industry,
    )
    return Status(201, unit)


@units_router.put(
    "/{unit_id}",
    response={200: UnitOut, **ERRORS_WRITE},
    url_name="unit-detail",
    summary="修改单位（整体替换）",
    **staff(Perm.UNIT_EDIT),
)
def update_unit(request: HttpRequest, unit_id: int, payload: UnitIn) -> Unit:
    actor = actor_of(request)
    unit = access_unit(actor, unit_id, Perm.UNIT_EDIT)
    union = (
        unit.union if payload.union_id == unit.union_id else union_in_scope(actor, payload.union_id)
    )
    return services.update_unit(
        acting_user=actor,
        unit=unit,
        name=payload.name,
        uscc=payload.uscc,
        union=union,
        address=payload.address,
        contact_name=payload.contact_name,
        industry=payload.industry,
    )
