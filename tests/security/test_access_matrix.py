"""S5: the URL × role × relative-organisation access matrix, generated from the URL resolver.

Every URL pattern of ``huzhu.urls`` (staff screens and the API) is requested by every role and by
an anonymous visitor, for a target object in each organisation relative to the actor:

    province ─ city_a ─┬─ county_a1 (the actor: "own") ─┬─ grassroots_1 ("child")
                       │                               └─ county federation
                       ├─ county_a2 ("sibling")
                       └─ a grassroots union directly under city_a ("parent")

Expected answers (GET):

* anonymous: 302 to the login page (screens) or 401 (API); public routes as listed in PUBLIC_ROUTES;
* member portal pages (``huzhu.portal.auth.member_required``): 302 to the portal login for the
  anonymous visitor and for every staff role alike, GET and writes (a staff session is never a
  member session, S4); the member's own access is tested in tests/portal;
* a role without the route's permission: 404 on an object; on a collection 404 for screens
  (``huzhu.web.auth.staff_required`` raises ``NotPermitted``, a 404) and 403 for the API
  (``huzhu.api.auth.StaffToken(collection=True)``);
* a permitted role: 200 for an object in a relation its kind is visible in (own, child — plans:
  parent), 404 for any other (sibling, parent).

Writes (POST on screens, every non-GET method of the API): every request that must not succeed —
anonymous, a role without the permission, an object outside the subtree — is sent with a body that
would change the object, and must answer 404 (302/401 anonymous, 403 an API collection; 405 when the
route does not take the method) and change nothing: the audit log (every write is audited in its
transaction) and the target's row are compared before and after.

Every answer is also checked for the plain ID numbers, phones and bank accounts of every member of
the tree, and for the names of the objects outside the actor's subtree; every list is requested a
second time with query parameters naming objects outside the subtree (``?union=…&unit=…``), which
must not show them either. ``test_write_bodies_would_succeed_in_scope`` is the control that the
write bodies do change an object in scope (so a 404 outside it is the scope check at work).

A route whose URL keyword arguments are not in ``KWARGS`` fails, and so does a route whose access
rule cannot be read (a screen not wrapped in ``staff_required`` and not in PUBLIC_ROUTES, an API
operation without a permission): a new screen cannot silently escape the matrix.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from django.conf import settings
from django.db import models, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from ninja.operation import PathView

import huzhu.rules
from huzhu.api.auth import StaffToken
from huzhu.core.ids import make_uscc
from huzhu.core.models import AuditEvent
from huzhu.orgs.models import Union, User
from huzhu.orgs.roles import Perm, Role, permissions_for
from huzhu.orgs.services import create_api_token
from huzhu.rules.plan import load_plan_text
from tests import factories

ROLES: tuple[str, ...] = (
    Role.CLERK,
    Role.REVIEWER,
    Role.FINANCE,
    Role.AUDITOR,
    Role.PLAN_MANAGER,
    Role.SYSTEM_ADMIN,
    Role.SECURITY_ADMIN,
    Role.AUDIT_ADMIN,
)
ANONYMOUS = "anonymous"
RELATIONS = ("own", "child", "sibling", "parent")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


# --- the world: one tree for the module, shared by every route's test --------------------------
@dataclass
class World:
    tree: factories.Tree
    unions: dict[str, Union]
    units: dict[str, models.Model]
    members: dict[str, models.Model]
    plans: dict[str, models.Model | None]
    receipts: dict[str, models.Model]
    entries: dict[str, models.Model]
    batches: dict[str, models.Model]
    enrollments: dict[str, models.Model]
    jobs: dict[str, models.Model]
    users: dict[str, User]
    screens: dict[str, Client]  # logged-in (second factor verified) browser sessions per role
    apis: dict[str, Client]  # clients sending the role's bearer token
    secrets: list[str]  # plain ID numbers, phones and accounts of every member
    markers: list[str]  # names of objects outside the actor's subtree


def _plan_text(code: str, name: str, region: str) -> str:
    """The demo province plan as another pooling area's plan for the current year."""
    source = (Path(huzhu.rules.__file__).parent / "plans" / "hunan-2026.yaml").read_text("utf-8")
    plan, errors = load_plan_text(source)
    assert plan is not None, errors
    year = timezone.localdate().year
    data = plan.to_dict(references=False)
    data.update(code=code, name=name, region=region, year=year, claim_deadline=f"{year + 1}-03-31")
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _import_plan(code: str, name: str, region: str, *, activate: bool = False) -> models.Model:
    from huzhu.plans.services import activate_plan, import_plan

    version = import_plan(acting_user=None, yaml_text=_plan_text(code, name, region))
    if activate:
        activate_plan(acting_user=None, plan_version=version)
    return version


def _enroll(members: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Per relation: a confirmed batch of the member's union with the member enrolled in it (the
    real roster flow: upload, validation, confirmation) and that batch's validation job; and an
    open (validated, one row to correct) batch of the same union, the target of the batch routes
    (uploads, confirmation and cancellation need an open batch to succeed)."""
    from huzhu.enrollment.jobs import validation_job
    from huzhu.enrollment.models import Enrollment
    from huzhu.enrollment.roster import COLUMNS
    from huzhu.enrollment.services import (
        attach_roster,
        confirm_batch,
        create_batch,
        validate_batch,
    )

    year = timezone.localdate().year
    _import_plan(f"MATRIX-HUNAN-{year}", "湖南省矩阵测试方案", "430000", activate=True)
    batches, enrollments, jobs = {}, {}, {}
    for relation, member in members.items():
        batch = create_batch(acting_user=None, union=member.union, plan_year=year)
        values = {
            "name": member.name,
            "id_number": member.id_number_enc,
            "phone": member.phone_enc or "",
            "unit_uscc": member.unit.uscc if member.unit else "",
            "employment_type": "合同",
            "bank_account": member.bank_account_enc or "",
        }
        lines = [",".join(COLUMNS.values()), ",".join(values.get(f, "") for f in COLUMNS)]
        content = ("\n".join(lines) + "\n").encode("utf-8")
        attach_roster(acting_user=None, batch=batch, file_name="花名册.csv", content=content)
        validate_batch(batch=batch)
        confirm_batch(acting_user=None, batch=batch)
        enrollments[relation] = Enrollment.objects.get(batch=batch, member=member)
        jobs[relation] = validation_job(None, batch)
        draft = create_batch(acting_user=None, union=member.union, plan_year=year)
        # One row to correct (an impossible ID number, no personal data): the error report of
        # the batch then has something to hand back.
        bad = {"name": "待改正职工", "id_number": "12345", "employment_type": "合同"}
        lines = [",".join(COLUMNS.values()), ",".join(bad.get(f, "") for f in COLUMNS)]
        content = ("\n".join(lines) + "\n").encode("utf-8")
        attach_roster(acting_user=None, batch=draft, file_name="待改正.csv", content=content)
        validate_batch(batch=draft)
        batches[relation] = draft
    return batches, enrollments, jobs


def _issue_receipts(issuers: dict[str, Union], payers: dict[str, Any]) -> dict[str, models.Model]:
    """One e-receipt per relation: issued by the relation's county or city union, paid by the
    relation's member (a receipt is visible from the issuer's and from the payer's subtree)."""
    from huzhu.contributions.receipt_services import allocate_range, issue_receipt

    today = timezone.localdate()
    code = f"430102{today.year % 100:02d}"
    receipts = {}
    for index, (relation, issuer) in enumerate(issuers.items()):
        allocate_range(
            acting_user=None,
            issuer=issuer,
            code=code,
            year=today.year,
            first_number=str(index * 100 + 1),
            last_number=str(index * 100 + 100),
        )
        payer = payers[relation]
        receipts[relation] = issue_receipt(
            acting_user=None,
            issuer=issuer,
            payer_name=payer.name,
            payer_kind="individual",
            payer_reference=payer.id_number_masked,
            items=[("职工互助保障互助金", 12000)],
            total_fen=12000,
            issued_on=today,
            source_type="matrix",
            source_id=f"matrix-{relation}",
            payer=payer,
        )
    return receipts


def _post_entries(organisations: dict[str, Union], payers: dict[str, Any]) -> dict[str, Any]:
    """One ledger entry per relation (a contribution received), originated by the relation's
    organisation: an entry is visible in the subtree of the organisation it carries."""
    from huzhu.ledger.services import Party, post_contribution_received

    return {
        relation: post_contribution_received(
            acting_user=None,
            organisation=organisation,
            date=timezone.localdate(),
            payment_id=f"matrix-{relation}",
            payer=Party.member(payers[relation]),
            amount_fen=12000,
        )
        for relation, organisation in organisations.items()
    }


def _screen_client(user: User) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    device = TOTPDevice.objects.create(user=user, name="matrix", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def build_world() -> World:
    tree = factories.tree()
    federation = factories.union(tree.county_a1, "芙蓉区新就业形态工会联合会", "federation")
    city_grassroots = factories.union(tree.city_a, "长沙市直矩阵测试公司工会", "grassroots")
    units = {
        "own": factories.unit(federation, "芙蓉联合会矩阵单位"),
        "child": tree.unit_1,
        "sibling": tree.unit_2,
        "parent": factories.unit(city_grassroots, "长沙市直矩阵单位"),
    }
    people = {
        "own": ("本级矩阵职工", federation, units["own"]),
        "child": ("下级矩阵职工", tree.grassroots_1, units["child"]),
        "sibling": ("兄弟矩阵职工", tree.grassroots_2, units["sibling"]),
        "parent": ("上级矩阵职工", city_grassroots, units["parent"]),
    }
    secrets: list[str] = []
    members = {}
    for index, (relation, (name, union, unit)) in enumerate(people.items()):
        number = factories.id_number(date(1980 + index, 5, 17))
        phone = f"1391234{index:04d}"
        account = f"62220202001122{index:05d}"
        members[relation] = factories.member(
            union, unit, name=name, number=number, phone=phone, bank_account=account
        )
        secrets += [number, phone, account]
    plans = {
        "own": None,  # no plan is pooled at a county (a province or a city runs its plan)
        "child": None,
        "sibling": _import_plan("MATRIX-ZHUZHOU-2026", "株洲市矩阵测试方案", "430200"),
        "parent": _import_plan("MATRIX-CHANGSHA-2026", "长沙市矩阵测试方案", "430100"),
    }
    unions = {
        "own": tree.county_a1,
        "child": tree.grassroots_1,
        "sibling": tree.county_a2,
        "parent": tree.city_a,
    }
    receipts = _issue_receipts(
        {
            "own": tree.county_a1,
            "child": tree.county_a1,
            "sibling": tree.county_a2,
            "parent": tree.city_a,
        },
        members,
    )
    entries = _post_entries(unions, members)
    # Re-read the members with their plain values (the roster needs them; never shown).
    from huzhu.members.models import Member

    plain = {
        r: Member.objects.select_related("unit", "union").get(pk=m.pk) for r, m in members.items()
    }
    batches, enrollments, jobs = _enroll(plain)
    users = {
        role: factories.staff(tree.county_a1, role, username=f"matrix_{role}") for role in ROLES
    }
    screens = {role: _screen_client(user) for role, user in users.items()}
    screens[ANONYMOUS] = Client(raise_request_exception=False)
    apis = {
        role: Client(
            headers={"Authorization": "Bearer " + create_api_token(acting_user=None, user=user)},
            raise_request_exception=False,
        )
        for role, user in users.items()
    }
    apis[ANONYMOUS] = Client(raise_request_exception=False)
    markers = [
        members["sibling"].name,
        members["parent"].name,
        units["sibling"].name,
        units["parent"].name,
        tree.county_a2.name,
        tree.grassroots_2.name,
        city_grassroots.name,
        tree.city_b.name,
        tree.county_b1.name,
        tree.unit_3.name,
        "株洲市矩阵测试方案",
    ]
    return World(
        tree,
        unions,
        units,
        members,
        plans,
        receipts,
        entries,
        batches,
        enrollments,
        jobs,
        users,
        screens,
        apis,
        secrets,
        markers,
    )


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """Built once per module inside a transaction that is rolled back at the end; each test runs
    in its own savepoint inside it (pytest-django's ``db``)."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer._from_testcase = True  # type: ignore[attr-defined]  # durable services may nest
        outer.__enter__()
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


# --- the registry of URL keyword arguments -----------------------------------------------------
@dataclass(frozen=True)
class Target:
    """How to find what a URL keyword names for each relation to the actor — an object (its pk
    goes into the URL), a plain value, or None when nothing can exist in that relation — and the
    relations in which the actor may see it."""

    find: Callable[[World, str], models.Model | str | None]
    visible: frozenset[str]
    note: str


def _members(w: World, rel: str) -> models.Model:
    return w.members[rel]


def _units(w: World, rel: str) -> models.Model:
    return w.units[rel]


def _unions(w: World, rel: str) -> models.Model:
    return w.unions[rel]


# Keyed by the keyword, or — for a generic keyword such as ``pk`` — by "<segment>/<keyword>",
# the URL segment just before it naming the collection ("members/<int:pk>/" → "members/pk").
KWARGS: dict[str, Target] = {
    "union_id": Target(
        _unions,
        frozenset({"own", "child"}),
        "own county_a1, child grassroots_1, sibling county_a2, parent city_a",
    ),
    "unit_id": Target(
        _units,
        frozenset({"own", "child"}),
        "own: a unit of the county's own federation (units belong to enrolling unions only); "
        "child unit_1; sibling unit_2; parent: a unit of a grassroots union directly under city_a",
    ),
    "member_id": Target(
        _members,
        frozenset({"own", "child"}),
        "members of the units above (own: the county federation's)",
    ),
    "members/pk": Target(_members, frozenset({"own", "child"}), "as member_id"),
    "orgs/pk": Target(_unions, frozenset({"own", "child"}), "as union_id"),
    "units/pk": Target(_units, frozenset({"own", "child"}), "as unit_id"),
    "plans/pk": Target(lambda w, rel: w.plans[rel], frozenset({"parent"}), "as plan_id"),
    "receipt_id": Target(
        lambda w, rel: w.receipts[rel],
        frozenset({"own", "child"}),
        "issued by county_a1 to its own federation's member (own) and to grassroots_1's (child), "
        "by county_a2 (sibling) and by city_a (parent) to their members",
    ),
    # --- receipt uploads to the finance platform (huzhu.contributions receipt_upload*) ---
    "upload_id": Target(
        lambda w, rel: w.receipts[rel].uploads.get(kind="issue"),  # type: ignore[attr-defined]
        frozenset({"own", "child"}),
        "the issue upload of each relation's receipt: scoped by the issuer (county_a1 for own "
        "and child, county_a2 sibling, city_a parent), not by the payer",
    ),
    "entries/pk": Target(
        lambda w, rel: w.entries[rel],
        frozenset({"own", "child"}),
        "ledger entries originated by county_a1, grassroots_1, county_a2 and city_a",
    ),
    "batches/pk": Target(
        lambda w, rel: w.batches[rel],
        frozenset({"own", "child"}),
        "an open enrollment batch of each relation's member union (own: the county federation's)",
    ),
    "batch_id": Target(lambda w, rel: w.batches[rel], frozenset({"own", "child"}), "as batches/pk"),
    "enrollments/pk": Target(
        lambda w, rel: w.enrollments[rel],
        frozenset({"own", "child"}),
        "the enrollment of each relation's member, confirmed in that batch",
    ),
    "jobs/pk": Target(
        lambda w, rel: w.jobs[rel],
        frozenset({"own", "child"}),
        "the validation job of each relation's batch (a job belongs to the batch's union)",
    ),
    # members:reveal — the field whose plain value is asked for; every role that may unmask
    # (clerk, reviewer, finance) may unmask the ID number (huzhu.orgs.roles.UNMASKABLE_FIELDS).
    "field": Target(lambda w, rel: "id_number", frozenset(RELATIONS), "the value id_number"),
    # --- co-funding (huzhu.contributions funding_*) ---
    "invoice_id": Target(
        lambda w, rel: _invoice(w, rel),
        frozenset({"own", "child"}),
        "the invoice of each relation's confirmed batch (own: the county federation's), created "
        "on first use in the test's transaction",
    ),
    # --- end co-funding ---
    # --- member portal (huzhu.portal) ---
    "corrections/pk": Target(
        lambda w, rel: _correction(w, rel),
        frozenset({"own", "child"}),
        "a correction request (a new phone number) of each relation's member, created on first use "
        "in the test's transaction",
    ),
    # --- end member portal ---
    # --- manual claims (huzhu.claims.manual*, /api/v1/claims) ---
    "claim_id": Target(
        lambda w, rel: _manual_claim(w, rel),
        frozenset({"own", "child"}),
        "a manual maternity claim (submitted, with a birth certificate) of each relation's member, "
        "filed on first use in the test's transaction: a claim belongs to its member's union",
    ),
    "document_id": Target(
        lambda w, rel: _manual_claim(w, rel).documents.first(),  # type: ignore[attr-defined]
        frozenset({"own", "child"}),
        "the birth certificate of the relation's manual claim",
    ),
    # --- end manual claims ---
    # --- settlement partners (huzhu.claims.partner_*, /api/v1/settlements) ---
    "partners/pk": Target(
        lambda w, rel: _partner(w, rel),
        frozenset({"own", "child"}),
        "a settlement partner of each relation's union (own county_a1, child grassroots_1, "
        "sibling county_a2, parent city_a), created on first use in the test's transaction",
    ),
    "setl_id": Target(
        lambda w, rel: "S-MATRIX-0001" if rel == "own" else None,
        frozenset({"own"}),
        "a settlement id on the partner API: only signed partner requests reach it (see "
        "PARTNER_ROUTES), so one relation is enough",
    ),
    # --- end settlement partners ---
    # --- settlement feed (huzhu.claims.feed*, /api/v1/settlement-files, /reconciliations) ---
    "files/pk": Target(
        lambda w, rel: _feed_file(w, rel),
        frozenset({"own", "child"}),
        "a (rejected) feed file of each relation's partner (see partners/pk), created on first "
        "use in the test's transaction: a file belongs to its partner's organisation",
    ),
    "reconciliations/pk": Target(
        lambda w, rel: _feed_report(w, rel),
        frozenset({"own", "child"}),
        "a reconciliation report of each relation's partner, created on first use",
    ),
    "settlement-files/file_id": Target(
        lambda w, rel: "1" if rel == "own" else None,
        frozenset({"own"}),
        "a file id on the partner API: only signed partner requests reach it (see "
        "FEED_PARTNER_ROUTES), so one relation is enough",
    ),
    # --- end settlement feed ---
    # --- benefit payments (huzhu.claims.payment_*, /api/v1/payments) ---
    "payment_batch_id": Target(
        lambda w, rel: _payment_batch(w, rel),
        frozenset({"own", "child"}),
        "an exported member payment batch of each relation's union (own county_a1, child "
        "grassroots_1, sibling county_a2, parent city_a) paying the relation's member, created on "
        "first use in the test's transaction",
    ),
    # --- end benefit payments ---
    "plan_id": Target(
        lambda w, rel: w.plans[rel],
        frozenset({"parent"}),
        "plans are pooled per province or city: the county sees its city's (parent) and "
        "province's plans; sibling: another city's plan (city_b); no own/child plan can exist",
    ),
}


# --- settlement partners (huzhu.claims.partner_*, /api/v1/settlements) ---
def _partner(w: World, rel: str) -> models.Model:
    """A settlement partner of the relation's union (idempotent per relation)."""
    from huzhu.claims.models import Partner

    org = w.unions[rel]
    partner, _ = Partner.objects.get_or_create(
        partner_id=f"PMATRIX{rel.upper()}",
        defaults={
            "name": f"矩阵测试合作方{rel}",
            "organisation": org,
            "organisation_path": org.path,
            "key_enc": "00" * 32,
            "scopes": ["settle", "cancel"],
        },
    )
    return partner


# The partner API authenticates signed requests of settlement partners (X-Partner-Id, X-Signature
# …, huzhu.claims.partners), never a staff token: every role and the anonymous visitor — none of
# them signs — gets 401, and nothing is written (requests without partner headers are not even
# audited).
PARTNER_ROUTES = frozenset({"api:settlements", "api:settlement-cancel"})


def _partner_signature_only(
    role: str, relation: str | None, generic: frozenset[int] | None
) -> frozenset[int] | None:
    return frozenset({401})


# --- end settlement partners ---


# --- settlement feed (huzhu.claims.feed*) ---
def _feed_file(w: World, rel: str) -> models.Model:
    """A rejected feed file of the relation's partner (idempotent per relation)."""
    from huzhu.claims.models import SettlementFile

    partner = _partner(w, rel)
    found = SettlementFile.objects.filter(partner=partner).first()
    return found or SettlementFile.objects.create(
        partner=partner,
        filename="matrix.csv",
        sha256="0" * 64,
        file_format="csv",
        declared_count=1,
        declared_total_fen=0,
        status="rejected",
        problems=[{"line": None, "field": "file", "message": "文件为空"}],
    )


def _feed_report(w: World, rel: str) -> models.Model:
    """A (balanced, empty) reconciliation report of the relation's partner (idempotent)."""
    from huzhu.claims.models import ReconciliationReport

    partner = _partner(w, rel)
    found = ReconciliationReport.objects.filter(partner=partner).first()
    return found or ReconciliationReport.objects.create(
        partner=partner,
        day=timezone.localdate(),
        their_count=0,
        their_medfee_fen=0,
        their_benefit_fen=0,
        our_count=0,
        our_medfee_fen=0,
        our_benefit_fen=0,
        source="cli",
    )


# Feed files and reconciliations are signed by partners like the settlement API (scope batch):
# every role and the anonymous visitor get 401 — with the method of each route.
FEED_PARTNER_ROUTES: dict[str, frozenset[str]] = {
    "api:settlement-files": frozenset({"POST"}),
    "api:settlement-file": frozenset({"GET"}),
    "api:reconciliations": frozenset({"POST"}),
}


# --- end settlement feed ---


# --- benefit payments (huzhu.claims.payment_*, /api/v1/payments) ---
def _payment_batch(w: World, rel: str) -> models.Model:
    """An exported batch of the relation's union with one line paying the relation's member an
    approved claim (idempotent per relation; built directly, the services are tested in
    tests/claims/test_payments.py). Nothing is posted: the bodies below only record failures."""
    from huzhu.claims.models import Claim, PaymentBatch, PaymentLine

    number = f"ZFMATRIX{rel.upper()}"
    existing = PaymentBatch.objects.filter(number=number).first()
    if existing is not None:
        return existing
    member = w.members[rel]
    claim = Claim.objects.create(
        number=f"PAYMATRIX{rel.upper()}",
        kind="manual",
        status="approved",
        member=member,
        person_index=member.id_number_index,  # type: ignore[attr-defined]
        union=member.union,  # type: ignore[attr-defined]
        union_path=member.union_path,  # type: ignore[attr-defined]
        year=timezone.localdate().year,
        record_key=f"PAYMATRIX-{rel}",
        product="inpatient",
        benefit_fen=1000,
        posted_fen=1000,
    )
    union = w.unions[rel]
    batch = PaymentBatch.objects.create(
        number=number,
        kind="member",
        union=union,
        union_path=union.path,
        status="exported",
        exported_at=timezone.now(),
        total_fen=1000,
        line_count=1,
        created_by=w.users[Role.FINANCE],
    )
    PaymentLine.objects.create(
        batch=batch,
        line_no=1,
        claim=claim,
        amount_fen=1000,
        payee_name=member.name,  # type: ignore[attr-defined]
    )
    return batch


def _payment_line(target: Any) -> tuple[Any, str]:
    from huzhu.claims.payments import line_reference

    batch = target["payment_batch_id"]
    line = batch.lines.get()
    return line, line_reference(batch, line)


def _payment_results_form(w: World, target: Any) -> dict[str, Any]:
    line, _ = _payment_line(target)
    return {f"result_{line.pk}": "failed", f"failure_reason_{line.pk}": "越权登记测试"}


def _payment_results_file(w: World, target: Any) -> dict[str, Any]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    _, reference = _payment_line(target)
    content = f"业务参考号,结果,银行流水号,失败原因\n{reference},失败,,越权登记测试\n"
    return {"file": SimpleUploadedFile("结果.csv", content.encode(), "text/csv")}


def _payment_results_api(w: World, target: Any) -> dict[str, Any]:
    _, reference = _payment_line(target)
    return {
        "rows": [{"reference": reference, "result": "failed", "failure_reason": "越权登记测试"}]
    }


# --- end benefit payments ---


# --- member portal (huzhu.portal) ---
def _correction(w: World, rel: str) -> models.Model:
    """The relation's member's correction request (idempotent per member)."""
    from huzhu.portal.models import CorrectionRequest
    from huzhu.portal.services import request_correction

    member = w.members[rel]
    existing = CorrectionRequest.objects.filter(member=member).first()
    return existing or request_correction(
        member=member, field="phone", value="13600001234", reason="矩阵测试：手机号码已更换"
    )


# --- end member portal ---


# --- manual claims (huzhu.claims.manual*, /api/v1/claims) ---
_MATRIX_PDF = b"%PDF-1.4\n%matrix\n%%EOF\n"


def _manual_claim(w: World, rel: str) -> models.Model:
    """A maternity claim of the relation's member (idempotent per member): a lump sum is filed
    submitted whatever the member's coverage, so documents can still be added to it."""
    from huzhu.claims.manual import DocumentUpload, ManualClaimInput, file_manual_claim
    from huzhu.claims.models import Claim

    member = w.members[rel]
    existing = Claim.objects.filter(member=member, product="maternity").first()
    if existing is not None:
        return existing
    return file_manual_claim(
        acting_user=w.users[Role.CLERK],
        member=member,  # type: ignore[arg-type]
        data=ManualClaimInput(
            product="maternity", birth_date=date(timezone.localdate().year, 1, 1), newborns=1
        ),
        documents=[DocumentUpload("birth_certificate", "出生医学证明.pdf", _MATRIX_PDF)],
    )


def _claim_document_upload(w: World, target: Any) -> dict[str, Any]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {
        "doc_type": "other",
        "file": SimpleUploadedFile("越权补充.pdf", _MATRIX_PDF, "application/pdf"),
    }


def _manual_claim_form(w: World, target: Any) -> dict[str, Any]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {
        "product": "maternity",
        "birth_date": date(timezone.localdate().year, 1, 2).isoformat(),
        "newborns": "1",
        "birth_certificate": SimpleUploadedFile("越权申请.pdf", _MATRIX_PDF, "application/pdf"),
    }


# --- end manual claims ---


# --- co-funding (huzhu.contributions funding_*) ---
def _invoice(w: World, rel: str) -> models.Model:
    """The invoice of the relation's confirmed batch (idempotent per batch)."""
    from huzhu.contributions.funding_services import create_invoice

    return create_invoice(acting_user=None, batch=w.enrollments[rel].batch)


def _payment_body(w: World, target: Any) -> dict[str, Any]:
    from huzhu.contributions.funding_models import InvoicePayer

    payer = InvoicePayer.objects.get(invoice=target["invoice_id"], payer_type="individual")
    return {
        "payer": payer.pk,
        "payer_id": payer.pk,
        "amount": "1.00",
        "bank_reference": "越权登记测试",
        "paid_on": timezone.localdate().isoformat(),
    }


def _api_payment_body(w: World, target: Any) -> dict[str, Any]:
    body = _payment_body(w, target)
    del body["payer"]
    return body


# --- end co-funding ---


# Routes anyone may request; the value: the statuses an anonymous visitor may get.
PUBLIC_ROUTES: dict[str, frozenset[int]] = {
    "web:login": frozenset({200}),
    "web:login_otp": frozenset({200, 302}),  # without a pending login: back to the login page
    "web:otp_enrol": frozenset({200, 302}),
    "web:logout": frozenset({302, 405}),  # POST only
    "api:openapi-json": frozenset({200}),
    "api:openapi-view": frozenset({200}),
    "api:docs-css": frozenset({200}),
    "api:docs-bundle": frozenset({200}),
    "api:docs-init": frozenset({200}),
    "api:api-root": frozenset({404}),  # django-ninja's placeholder for the API's root path
    # e-receipt verification (the QR code on a receipt links here) and the signing public key
    "contributions:verify": frozenset({200}),
    "contributions:public_key": frozenset({200}),
    # member portal: its login, activation with a letter's code, logout (POST only)
    "portal:login": frozenset({200}),
    "portal:activate": frozenset({200}),
    "portal:logout": frozenset({302, 405}),
}

# API operations that do not declare their permission through huzhu.api.auth.staff(): what their
# views check (read from the code; declaring it on the operation is better, see the report).
API_PERMISSIONS: dict[str, Perm] = {}

# Documented exceptions to the generic rule: (route name) -> (role, relation, generic) -> statuses.
Override = Callable[[str, str | None, frozenset[int] | None], frozenset[int] | None]


def _provincial_only(
    role: str, relation: str | None, generic: frozenset[int] | None
) -> frozenset[int] | None:
    return generic if role == ANONYMOUS else frozenset({404})


OVERRIDES: dict[str, Override] = {
    # Activating and retiring a plan is for provincial staff only
    # (huzhu.plans.selectors.may_manage_region): the county actor gets 404 whatever its roles.
    "plans:activate": _provincial_only,
    "plans:retire": _provincial_only,
    # --- settlement partners ---
    "api:settlements": _partner_signature_only,
    "api:settlement-cancel": _partner_signature_only,
    # --- end settlement partners ---
    # --- settlement feed ---
    **dict.fromkeys(FEED_PARTNER_ROUTES, _partner_signature_only),
    # --- end settlement feed ---
}


# Query parameters that name an object on list screens and list endpoints ("?union=12"): every
# collection is also requested with them pointing outside the subtree, and must not show it.
QUERY_PROBES: dict[str, Callable[[World, str], models.Model | None]] = {
    "union": _unions,
    "union_id": _unions,
    "parent_id": _unions,
    "unit": _units,
    "unit_id": _units,
    "member": _members,
    "member_id": _members,
}


# --- request bodies that would change the target (sent only where the write must fail) -------
def _member_body(w: World, target: Any) -> dict[str, Any]:
    return {
        "unit_id": None,
        "name": "越权修改",
        "id_number": factories.id_number(date(1990, 1, 2)),
        "employment_type": "dispatched",
        "retirement_category": None,
        "phone": None,
        "bank_account": None,
        "bank_name": None,
    }


def _unit_body(w: World, target: Any) -> dict[str, Any]:
    return {
        "union_id": w.tree.grassroots_1.pk,
        "name": "越权修改",
        "uscc": make_uscc("91430100MX9999999"),
    }


def _member_form(w: World, target: Any) -> dict[str, Any]:
    # The edit form keeps the stored ID number, phone and account when left empty.
    return {"name": "越权修改", "employment_type": "dispatched", "retirement_category": "male"}


def _unit_form(w: World, target: Any) -> dict[str, Any]:
    return {**_unit_body(w, target), "union": str(w.tree.grassroots_1.pk)}


def _roster_upload(w: World, target: Any) -> dict[str, Any]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from huzhu.enrollment.roster import COLUMNS
    from huzhu.orgs.models import Unit

    batch = target["batch_id"]
    unit = Unit.objects.filter(union=batch.union).first()
    values = {
        "name": "越权职工",
        "id_number": factories.id_number(date(1993, 6, 7)),
        "unit_uscc": unit.uscc if unit else "",
        "employment_type": "合同",
    }
    lines = [",".join(COLUMNS.values()), ",".join(values.get(f, "") for f in COLUMNS)]
    content = ("\n".join(lines) + "\n").encode("utf-8")
    return {"file": SimpleUploadedFile("花名册.csv", content, content_type="text/csv")}


def _fixed(values: dict[str, Any]) -> Callable[[World, Any], dict[str, Any]]:
    return lambda w, target: dict(values)


BODIES: dict[tuple[str, str], Callable[[World, Any], dict[str, Any]]] = {
    # --- settlement partners ---
    ("partners:edit", "POST"): _fixed(
        {"name": "越权修改", "scopes": "settle", "ip_allowlist": "10.0.0.0/8"}
    ),
    ("partners:rotate", "POST"): _fixed({}),
    ("partners:deactivate", "POST"): _fixed({}),
    # --- end settlement partners ---
    ("api:member-detail", "PUT"): _member_body,
    ("api:unit-detail", "PUT"): _unit_body,
    ("members:edit", "POST"): _member_form,
    ("orgs:unit_edit", "POST"): _unit_form,
    ("members:reveal", "POST"): _fixed({"reason": "越权查看测试"}),
    ("members:hardship_add", "POST"): _fixed(
        {"source": "union_file", "valid_from": "2026-01-01", "evidence": "越权登记"}
    ),
    ("members:family_add", "POST"): lambda w, target: {
        "name": "越权家属",
        "relation": "spouse",
        "id_number": factories.id_number(date(1991, 3, 4), male=False),
    },
    ("members:consent_grant", "POST"): _fixed({"channel": "paper_via_union"}),
    ("orgs:create_child", "POST"): lambda w, target: {
        "name": "越权下级工会",
        "kind": "grassroots",
        "uscc": factories.uscc("81430100"),
    },
    ("contributions:receipt_void", "POST"): _fixed({"reason": "越权作废测试"}),
    ("contributions:receipt_reissue", "POST"): _fixed({"reason": "越权重开测试"}),
    ("ledger:reverse", "POST"): _fixed({"reason": "越权冲销测试"}),
    ("api:upload_roster", "POST"): _roster_upload,
    # --- co-funding (huzhu.contributions funding_*) ---
    ("funding:payment_new", "POST"): _payment_body,
    ("api:funding-payments", "POST"): _api_payment_body,
    ("funding:unit_split_create", "POST"): _fixed(
        {"valid_from": "2026-01-01", "mode": "percent", "individual": "30", "union": "20"}
    ),
    # --- end co-funding ---
    # --- manual claims (huzhu.claims.manual*, /api/v1/claims) ---
    ("api:claim-documents", "POST"): _claim_document_upload,
    ("manual:new", "POST"): _manual_claim_form,
    # --- end manual claims ---
    # --- claims review (huzhu.claims.views; the claim: claim_id above) ---
    ("claims:start_review", "POST"): _fixed({"note": "越权审核测试"}),
    ("claims:diagnoses", "POST"): _fixed({"reason": "越权查看诊断测试"}),
    # --- end claims review ---
    # --- benefit payments (huzhu.claims.payment_*, /api/v1/payments) ---
    ("payments:export", "POST"): _fixed({"reason": "越权导出测试", "encoding": "utf-8"}),
    ("payments:results_manual", "POST"): _payment_results_form,
    ("payments:results_upload", "POST"): _payment_results_file,
    ("payments:cancel", "POST"): _fixed({"reason": "越权作废测试"}),
    ("api:payment-batch-export", "POST"): _fixed({"reason": "越权导出测试"}),
    ("api:payment-batch-results", "POST"): _payment_results_api,
    ("api:payment-batch-cancel", "POST"): _fixed({"reason": "越权作废测试"}),
    # --- end benefit payments ---
    # --- member portal (huzhu.portal) ---
    ("portal:issue_activation", "POST"): _fixed({}),
    ("portal:staff_correction", "POST"): _fixed({"status": "done", "note": "越权处理测试"}),
    ("portal:staff_correction_reveal", "POST"): _fixed({"reason": "越权查看测试"}),
    # --- end member portal ---
}


# --- discovering routes and their access rules -------------------------------------------------
@dataclass(frozen=True)
class Route:
    name: str
    pattern: str
    kwargs: tuple[str, ...]
    callback: Callable[..., Any]

    @property
    def is_api(self) -> bool:
        return self.name.startswith("api:")

    @property
    def id(self) -> str:
        return f"{self.name}[/{self.pattern}]"


def discover() -> list[Route]:
    routes: dict[tuple[str, str], Route] = {}

    def walk(resolver: URLResolver, prefix: str, namespace: str) -> None:
        for entry in resolver.url_patterns:
            pattern = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                inner = namespace
                if entry.namespace:
                    inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
                walk(entry, pattern, inner)
            elif isinstance(entry, URLPattern):
                name = f"{namespace}:{entry.name}" if namespace else str(entry.name)
                kwargs = tuple(re.findall(r"<(?:\w+:)?(\w+)>", pattern))
                routes.setdefault((pattern, name), Route(name, pattern, kwargs, entry.callback))

    walk(get_resolver("huzhu.urls"), "", "")
    return sorted(routes.values(), key=lambda r: r.pattern)


ROUTES = discover()


@dataclass(frozen=True)
class Rule:
    public: bool
    perms: dict[str, Perm | None] = field(default_factory=dict)  # method -> permission
    methods: frozenset[str] | None = None  # None: not known in advance (screens)
    member: bool = False  # a member portal page (huzhu.portal.auth.member_required)

    def perm(self, method: str) -> Perm | None:
        return self.perms.get(method, self.perms.get("*"))


def _path_view(callback: Callable[..., Any]) -> PathView | None:
    for cell in getattr(callback, "__closure__", None) or ():
        if isinstance(cell.cell_contents, PathView):
            return cell.cell_contents
    return None


_STAFF_REQUIRED_FILE = str(Path("huzhu") / "web" / "auth.py")


def _staff_permission(callback: Callable[..., Any]) -> tuple[bool, Perm | None]:
    """Whether the view is wrapped in ``huzhu.web.auth.staff_required`` and with which
    permission (read from the wrapper's closure, through every ``functools.wraps`` layer)."""
    fn: Any = callback
    seen: set[int] = set()
    while fn is not None and id(fn) not in seen:
        seen.add(id(fn))
        if hasattr(fn, "staff_permission"):
            return True, fn.staff_permission
        code = getattr(fn, "__code__", None)
        if (
            code is not None
            and code.co_filename.endswith(_STAFF_REQUIRED_FILE)
            and "perm" in code.co_freevars
            and fn.__closure__
        ):
            cells = dict(
                zip(code.co_freevars, (c.cell_contents for c in fn.__closure__), strict=True)
            )
            return True, cells["perm"]
        fn = getattr(fn, "__wrapped__", None)
    return False, None


def _member_only(callback: Callable[..., Any]) -> bool:
    """Whether the view is wrapped in ``huzhu.portal.auth.member_required``."""
    fn: Any = callback
    seen: set[int] = set()
    while fn is not None and id(fn) not in seen:
        seen.add(id(fn))
        if getattr(fn, "portal_member_only", False):
            return True
        fn = getattr(fn, "__wrapped__", None)
    return False


def rule_for(route: Route) -> Rule | str:
    """The route's access rule, or why it cannot be read (the test then fails)."""
    if route.name in PUBLIC_ROUTES:
        return Rule(public=True)
    if route.name in PARTNER_ROUTES:  # settlement partners sign; staff never get in
        return Rule(public=False, perms={"POST": None}, methods=frozenset({"POST"}))
    if route.name in FEED_PARTNER_ROUTES:  # settlement feed: partners sign (scope batch)
        methods = FEED_PARTNER_ROUTES[route.name]
        return Rule(public=False, perms=dict.fromkeys(methods), methods=methods)
    if not route.is_api and _member_only(route.callback):
        return Rule(public=False, member=True)
    if route.is_api:
        view = _path_view(route.callback)
        if view is None:
            return "not a django-ninja operation"
        perms: dict[str, Perm | None] = {}
        for op in view.operations:
            auth = [a for a in op.auth_callbacks if a is not None]
            if not auth:
                return (
                    f"{sorted(op.methods)} answers without authentication (add to PUBLIC_ROUTES?)"
                )
            declared: Perm | None = None
            for callback in auth:
                if isinstance(callback, StaffToken) and callback.perm is not None:
                    declared = callback.perm
            extra = (op.openapi_extra or {}).get("x-permission")
            if declared is None and extra:
                declared = Perm(extra)
            if declared is None:
                declared = API_PERMISSIONS.get(route.name)
            if declared is None:
                return (
                    f"{sorted(op.methods)} declares no permission: use "
                    "huzhu.api.auth.staff(Perm…) (or openapi_extra x-permission)"
                )
            for method in op.methods:
                perms[method] = declared
        return Rule(public=False, perms=perms, methods=frozenset(perms))
    wrapped, perm = _staff_permission(route.callback)
    if not wrapped:
        return "a screen not wrapped in huzhu.web.auth.staff_required (and not in PUBLIC_ROUTES)"
    return Rule(public=False, perms={"*": perm})


# --- expectations --------------------------------------------------------------------------------
def _has(role: str, perm: Perm | None) -> bool:
    return perm is None or perm in permissions_for({role})


def registry_key(route: Route, kwarg: str) -> str:
    if kwarg in KWARGS:
        return kwarg
    match = re.search(rf"([\w-]+)/<(?:\w+:)?{kwarg}>", route.pattern)
    return f"{match.group(1) if match else ''}/{kwarg}"


def unmapped_kwargs(route: Route) -> list[str]:
    return sorted(k for k in route.kwargs if registry_key(route, k) not in KWARGS)


def _visible(route: Route, relation: str | None) -> bool:
    return relation is None or all(
        relation in KWARGS[registry_key(route, k)].visible for k in route.kwargs
    )


def _generic(
    route: Route, rule: Rule, method: str, role: str, relation: str | None
) -> frozenset[int] | None:
    write = method != "GET"
    if rule.member:
        return frozenset({302})  # the portal login, for staff sessions and visitors alike
    if role == ANONYMOUS:
        if rule.public:
            return None if write else PUBLIC_ROUTES[route.name]
        return frozenset({401}) if route.is_api else frozenset({302})
    if rule.public:
        return None
    allowed = _has(role, rule.perm(method))
    if relation is None:  # a collection
        if allowed:
            return None if write else frozenset({200})
        return frozenset({403}) if route.is_api else frozenset({404})
    if allowed and _visible(route, relation):
        return None if write else frozenset({200})
    return frozenset({404})


def expected(
    route: Route, rule: Rule, method: str, role: str, relation: str | None
) -> frozenset[int] | None:
    """The statuses allowed; None where the request would legitimately succeed (a write, which
    is then not sent) or where nothing is pinned (public routes for logged-in users)."""
    generic = _generic(route, rule, method, role, relation)
    override = OVERRIDES.get(route.name)
    return override(role, relation, generic) if override else generic


# --- running one route ---------------------------------------------------------------------------
@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)
    requests: int = 0


def _url(route: Route, objects: dict[str, Any]) -> str:
    return reverse(
        route.name,
        kwargs={k: o.pk if isinstance(o, models.Model) else o for k, o in objects.items()},
    )


def _snapshot(objects: dict[str, models.Model]) -> dict[str, Any]:
    return {
        k: type(o)._default_manager.filter(pk=o.pk).values().first() for k, o in objects.items()
    }


def _text_of(response: Any) -> str:
    """The answer as text; JSON is re-serialised without \\u escapes, so names can be found."""
    if getattr(response, "streaming", False):
        content = b"".join(response.streaming_content)
        response.streaming_content = [content]
    else:
        content = bytes(response.content)
    text = content.decode("utf-8", "replace")
    if content.startswith(b"PK\x03\x04"):  # .xlsx and other zipped downloads: every part
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return "\n".join(archive.read(n).decode("utf-8", "replace") for n in archive.namelist())
    if response.get("Content-Type", "").startswith("application/json"):
        try:
            return json.dumps(json.loads(text), ensure_ascii=False)
        except ValueError:
            return text
    return text


def _check_body(w: World, text: str, where: str, outcome: Outcome) -> None:
    leaked = [s for s in w.secrets if s in text]
    if leaked:
        outcome.problems.append(f"{where}: plain personal data in the answer ({len(leaked)})")
    seen = [m for m in w.markers if m in text]
    if seen:
        outcome.problems.append(f"{where}: shows objects outside the subtree: {seen}")


def _login_url(route: Route | None = None) -> str:
    if route is not None and not route.is_api and _member_only(route.callback):
        return reverse("portal:login")
    return reverse(settings.LOGIN_URL)


def _status_ok(response: Any, allowed: frozenset[int], route: Route, method: str) -> bool:
    status = response.status_code
    if status == 405 and method not in response.get("Allow", ""):
        return True  # the route does not take this method: nothing to reach
    if status not in allowed:
        return False
    if status == 302 and not route.is_api and 302 in allowed and route.name not in PUBLIC_ROUTES:
        return bool(response["Location"].startswith(_login_url(route)))
    return True


def _request(client: Client, method: str, url: str, body: dict[str, Any] | None, api: bool) -> Any:
    if method == "GET":
        return client.get(url)
    if body and any(hasattr(v, "read") for v in body.values()):
        assert method == "POST"
        return client.post(url, body)  # multipart (file uploads)
    if api:
        return client.generic(method, url, json.dumps(body or {}), content_type="application/json")
    return client.generic(
        method, url, urlencode(body or {}), content_type="application/x-www-form-urlencoded"
    )


def _query_names(route: Route) -> set[str]:
    """The probe parameters a route takes: all for screens (a view ignores what it does not
    read), the declared ones for the API (which rejects undeclared parameters with 422)."""
    if not route.is_api:
        return set(QUERY_PROBES)
    view = _path_view(route.callback)
    ops = [op for op in (view.operations if view else []) if "GET" in op.methods]
    declared = {p.alias or p.name for op in ops for p in op.signature.params}
    return declared & set(QUERY_PROBES)


def probe_queries(w: World, route: Route, rule: Rule, outcome: Outcome) -> None:
    names = _query_names(route)
    if route.kwargs or rule.public or not names:
        return
    download = False
    for role in ROLES:
        if expected(route, rule, "GET", role, None) != {200}:
            continue
        client = (w.apis if route.is_api else w.screens)[role]
        for relation in ("sibling", "parent"):
            params = {}
            for name in sorted(names):
                target = QUERY_PROBES[name](w, relation)
                if target is not None:
                    params[name] = target.pk
            url = reverse(route.name) + "?" + urlencode(params)
            response = client.get(url)
            outcome.requests += 1
            where = f"GET {url} as {role} ({relation} in the query)"
            if response.status_code >= 500:
                outcome.problems.append(f"{where}: answered {response.status_code}")
            _check_body(w, _text_of(response), where, outcome)
            if not response.get("Content-Type", "").startswith(("text/html", "application/json")):
                download = True
        if download:
            return  # a download (template, export): checked for one permitted role only


def run_route(w: World, route: Route, rule: Rule) -> Outcome:
    outcome = Outcome()
    relations: tuple[str | None, ...] = RELATIONS if route.kwargs else (None,)
    methods = ["GET"]
    if rule.methods is not None:
        methods = ["GET"] if "GET" in rule.methods else []
        methods += [m for m in WRITE_METHODS if m in rule.methods]
    else:
        methods = ["GET", "POST"]
    for relation in relations:
        objects: dict[str, Any] = {}
        if relation is not None:
            found = {k: KWARGS[registry_key(route, k)].find(w, relation) for k in route.kwargs}
            if any(o is None for o in found.values()):
                continue
            objects = {k: o for k, o in found.items() if o is not None}
        url = _url(route, objects)
        objects = {k: o for k, o in objects.items() if isinstance(o, models.Model)}
        # An anonymous answer cannot depend on the target's organisation: two relations suffice.
        anonymous = (ANONYMOUS,) if relation in (None, "own", "sibling") else ()
        for role in (*ROLES, *anonymous):
            client = (w.apis if route.is_api else w.screens)[role]
            for method in methods:
                allowed = expected(route, rule, method, role, relation)
                if allowed is None and method != "GET":
                    continue  # the write would succeed: not a scope check
                write = method != "GET"
                body = None
                if write:
                    builder = BODIES.get((route.name, method))
                    body = builder(w, objects) if builder else {}
                    audit_before = AuditEvent.objects.count()
                    rows_before = _snapshot(objects)
                response = _request(client, method, url, body, route.is_api)
                outcome.requests += 1
                where = f"{method} {url} as {role} ({relation or 'collection'})"
                if response.status_code >= 500:
                    outcome.problems.append(f"{where}: answered {response.status_code}")
                    continue
                if allowed is not None and not _status_ok(response, allowed, route, method):
                    outcome.problems.append(
                        f"{where}: answered {response.status_code}, expected "
                        f"{'/'.join(map(str, sorted(allowed)))}"
                    )
                if write:
                    if AuditEvent.objects.count() != audit_before:
                        outcome.problems.append(f"{where}: wrote an audit event (changed data)")
                    if _snapshot(objects) != rows_before:
                        outcome.problems.append(f"{where}: changed the target row")
                _check_body(w, _text_of(response), where, outcome)
    return outcome


# --- the tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_route_matrix(route: Route, world: World, db: None) -> None:
    unmapped = unmapped_kwargs(route)
    if unmapped:
        pytest.fail(
            f"{route.id}: URL keyword(s) {unmapped} "
            f"(registry keys {[registry_key(route, k) for k in unmapped]}) are not in KWARGS of "
            "tests/security/test_access_matrix.py — add how to build the target object in each "
            "relative organisation"
        )
    rule = rule_for(route)
    if isinstance(rule, str):
        pytest.fail(f"{route.id}: {rule}")
    outcome = run_route(world, route, rule)
    probe_queries(world, route, rule, outcome)
    assert not outcome.problems, "\n".join(outcome.problems)
    assert outcome.requests > 0


def test_matrix_covers_the_staff_api_and_screens() -> None:
    """Guards the generator: if discovery broke, the matrix would pass vacuously."""
    names = {r.name for r in ROUTES}
    for name in (
        "api:org-list",
        "api:org-detail",
        "api:unit-list",
        "api:unit-detail",
        "api:member-list",
        "api:member-detail",
        "web:dashboard",
    ):
        assert name in names
    detail = next(r for r in ROUTES if r.name == "api:member-detail")
    rule = rule_for(detail)
    assert isinstance(rule, Rule)
    assert rule.perms == {"GET": Perm.MEMBER_VIEW, "PUT": Perm.MEMBER_EDIT}
    dashboard = next(r for r in ROUTES if r.name == "web:dashboard")
    assert rule_for(dashboard) == Rule(public=False, perms={"*": None})


def test_expectations_follow_the_documented_rules() -> None:
    detail = next(r for r in ROUTES if r.name == "api:member-detail")
    listing = next(r for r in ROUTES if r.name == "api:member-list")
    rule_detail, rule_list = rule_for(detail), rule_for(listing)
    assert isinstance(rule_detail, Rule) and isinstance(rule_list, Rule)
    assert expected(detail, rule_detail, "GET", Role.CLERK, "child") == {200}
    assert expected(detail, rule_detail, "GET", Role.CLERK, "sibling") == {404}
    assert expected(detail, rule_detail, "GET", Role.CLERK, "parent") == {404}
    assert expected(detail, rule_detail, "GET", Role.SYSTEM_ADMIN, "own") == {404}
    assert expected(detail, rule_detail, "GET", ANONYMOUS, "own") == {401}
    assert expected(detail, rule_detail, "PUT", Role.AUDITOR, "own") == {404}
    assert expected(detail, rule_detail, "PUT", Role.CLERK, "own") is None
    assert expected(listing, rule_list, "GET", Role.SYSTEM_ADMIN, None) == {403}
    assert expected(listing, rule_list, "POST", Role.REVIEWER, None) == {403}


@pytest.mark.parametrize("key", sorted(BODIES), ids=[f"{n}-{m}" for n, m in sorted(BODIES)])
def test_write_bodies_would_succeed_in_scope(key: tuple[str, str], world: World, db: None) -> None:
    """Control for the write checks: each body sent to out-of-scope targets does change an own
    target when a permitted role sends it — so a 404 there is the scope check, not a bad body."""
    name, method = key
    route = next((r for r in ROUTES if r.name == name), None)
    if route is None:
        pytest.skip(f"{name} is not routed (yet)")
    rule = rule_for(route)
    assert isinstance(rule, Rule)
    role = next(r for r in ROLES if _has(r, rule.perm(method)))
    objects = {k: KWARGS[registry_key(route, k)].find(world, "own") for k in route.kwargs}
    builder = BODIES[key]
    client = (world.apis if route.is_api else world.screens)[role]
    before = AuditEvent.objects.count()
    response = _request(client, method, _url(route, objects), builder(world, objects), route.is_api)
    assert response.status_code in {200, 201, 302}, response.content.decode()[:2000]
    assert AuditEvent.objects.count() > before


def test_portal_member_pages_are_read_as_member_only() -> None:
    """Member portal pages answer every staff role and the visitor with the portal login; its
    staff pages follow the generic staff rule."""
    routes = {r.name: r for r in ROUTES}
    for name in ("portal:home", "portal:receipt_pdf", "portal:consent_grant"):
        rule = rule_for(routes[name])
        assert isinstance(rule, Rule) and rule.member, name
        for role in (Role.CLERK, ANONYMOUS):
            assert expected(routes[name], rule, "GET", role, "own") == {302}
            assert expected(routes[name], rule, "POST", role, None) == {302}
        assert _login_url(routes[name]) == reverse("portal:login")
    staff_list = rule_for(routes["portal:staff_corrections"])
    assert staff_list == Rule(public=False, perms={"*": Perm.MEMBER_VIEW})
    assert _login_url(routes["portal:staff_corrections"]) == reverse(settings.LOGIN_URL)
