"""Staff pages for the union tree and the units (thin: parse, call one service, render)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from huzhu.core.errors import InvalidInput
from huzhu.members.selectors import members_within
from huzhu.orgs.access import access_union, access_unit
from huzhu.orgs.forms import UnionForm, UnitForm
from huzhu.orgs.models import Union, User
from huzhu.orgs.roles import Perm
from huzhu.orgs.selectors import ancestors_of, tree_children, units_for, units_within
from huzhu.orgs.services import allowed_child_kinds, create_union, create_unit, update_unit
from huzhu.web.auth import staff_required, staff_user

UNIT_PAGE_SIZE = 20


def int_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


def breadcrumbs_for(user: User, union: Union) -> list[Union]:
    """The chain from the user's own organisation down to ``union`` (never above the scope)."""
    own_depth = user.organisation.depth if user.organisation else 0
    return [u for u in ancestors_of(union) if u.depth >= own_depth]


# --- the tree ----------------------------------------------------------------------------------
@staff_required(Perm.ORG_VIEW)
def org_tree(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    root = access_union(user, user.organisation_id or 0)
    return render(
        request,
        "orgs/tree.html",
        {"root": root, "children": list(tree_children(user, root))},
    )


@staff_required(Perm.ORG_VIEW)
def org_children(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the children of one node, loaded when the node is opened."""
    user = staff_user(request)
    union = access_union(user, pk)
    return render(request, "orgs/_children.html", {"children": list(tree_children(user, union))})


@staff_required(Perm.ORG_VIEW)
def org_counts(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: unit and member counts of one node's subtree, loaded when the node is shown."""
    user = staff_user(request)
    union = access_union(user, pk)
    perms = user.perms()
    context: dict[str, Any] = {"union": union}
    if Perm.UNIT_VIEW in perms:
        context["units"] = units_within(user, union).count()
    if Perm.MEMBER_VIEW in perms:
        context["members"] = members_within(user, union).count()
    return render(request, "orgs/_counts.html", context)


@staff_required(Perm.ORG_VIEW)
def org_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    union = access_union(user, pk)
    perms = user.perms()
    chain = breadcrumbs_for(user, union)
    return render(
        request,
        "orgs/detail.html",
        {
            "union": union,
            "ancestors": chain[:-1],
            "children": list(tree_children(user, union)),
            "can_add_child": Perm.ORG_EDIT in perms and bool(allowed_child_kinds(union)),
            "can_add_unit": Perm.UNIT_EDIT in perms and union.can_enroll,
            "can_view_units": Perm.UNIT_VIEW in perms,
            "can_view_members": Perm.MEMBER_VIEW in perms,
        },
    )


@staff_required(Perm.ORG_EDIT)
def org_create_child(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    parent = access_union(user, pk, Perm.ORG_EDIT)
    form = UnionForm(request.POST or None, parent=parent)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            union = create_union(
                acting_user=user,
                parent=parent,
                name=data["name"],
                kind=data["kind"],
                region_code=data["region_code"],
                uscc=data["uscc"] or None,
                address=data["address"],
                contact_name=data["contact_name"],
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"已新建组织：{union.name}")
            return redirect("orgs:detail", pk=union.pk)
    status = 422 if form.errors else 200
    return render(
        request,
        "orgs/union_form.html",
        {"form": form, "parent": parent, "ancestors": breadcrumbs_for(user, parent)},
        status=status,
    )


# --- units -------------------------------------------------------------------------------------
def _looks_like_uscc(text: str) -> bool:
    return len(text) == 18 and text.isascii() and text.isalnum()


@staff_required(Perm.UNIT_VIEW)
def unit_list(request: HttpRequest) -> HttpResponse:
    """Search by name (contains) or exact USCC; offset pages of 20 read as 21 rows (no COUNT)."""
    user = staff_user(request)
    q = request.GET.get("q", "").strip()[:100]
    qs = units_for(user).select_related("union")
    union = None
    union_id = int_param(request, "union")
    if union_id is not None:
        union = access_union(user, union_id)
        qs = units_within(user, union).select_related("union")
    if q:
        qs = qs.filter(uscc=q.upper()) if _looks_like_uscc(q) else qs.filter(name__contains=q)
    page = max(1, int_param(request, "page") or 1)
    start = (page - 1) * UNIT_PAGE_SIZE
    rows = list(qs.order_by("name", "pk")[start : start + UNIT_PAGE_SIZE + 1])
    has_next = len(rows) > UNIT_PAGE_SIZE
    base = {k: v for k, v in (("q", q), ("union", union_id)) if v}

    def page_url(n: int) -> str:
        return "?" + urlencode({**base, "page": n})

    return render(
        request,
        "orgs/unit_list.html",
        {
            "units": rows[:UNIT_PAGE_SIZE],
            "q": q,
            "union": union,
            "page": page,
            "prev_url": page_url(page - 1) if page > 1 else None,
            "next_url": page_url(page + 1) if has_next else None,
            "can_edit": user.has_perm_code(Perm.UNIT_EDIT),
        },
    )


@staff_required(Perm.UNIT_VIEW)
def unit_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    unit = access_unit(user, pk)
    perms = user.perms()
    member_count = None
    if Perm.MEMBER_VIEW in perms:
        # One indexed COUNT for one unit's detail page.
        member_count = members_within(user, unit.union).filter(unit=unit).count()
    return render(
        request,
        "orgs/unit_detail.html",
        {
            "unit": unit,
            "member_count": member_count,
            "members_url": reverse("members:list") + f"?unit={unit.pk}",
            "can_edit": Perm.UNIT_EDIT in perms,
            "can_add_member": Perm.MEMBER_EDIT in perms,
        },
    )


@staff_required(Perm.UNIT_EDIT)
def unit_create(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    union_id = int_param(request, "union")
    preset = access_union(user, union_id) if union_id is not None else None
    form = UnitForm(request.POST or None, user=user, union=preset)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            unit = create_unit(
                acting_user=user,
                union=data["union_obj"],
                name=data["name"],
                uscc=data["uscc"],
                address=data["address"],
                contact_name=data["contact_name"],
                industry=data["industry"],
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"已新建单位：{unit.name}")
            return redirect("orgs:unit_detail", pk=unit.pk)
    status = 422 if form.errors else 200
    return render(request, "orgs/unit_form.html", {"form": form, "unit": None}, status=status)


@staff_required(Perm.UNIT_EDIT)
def unit_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    unit = access_unit(user, pk, Perm.UNIT_EDIT)
    form = UnitForm(request.POST or None, user=user, unit=unit)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            update_unit(
                acting_user=user,
                unit=unit,
                union=data["union_obj"],
                name=data["name"],
                uscc=data["uscc"],
                address=data["address"],
                contact_name=data["contact_name"],
                industry=data["industry"],
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "单位信息已保存")
            return redirect("orgs:unit_detail", pk=unit.pk)
    status = 422 if form.errors else 200
    return render(request, "orgs/unit_form.html", {"form": form, "unit": unit}, status=status)
