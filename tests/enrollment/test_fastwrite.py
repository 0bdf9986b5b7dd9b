"""The roster's set-based member insert stores exactly what ``members.services`` stores: every
column (decrypted values, blind indexes, masks, dates) equal to a member written by
``bulk_create_members`` from the same data; and ``insert_rows`` fills defaults."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import IntegrityError, transaction

from huzhu.core.ids import make_id_number
from huzhu.enrollment import services
from huzhu.enrollment.fastwrite import insert_rows
from huzhu.enrollment.models import Enrollment, EnrollmentBatch
from huzhu.members.models import Consent, HardshipRecord, Member
from huzhu.members.services import MemberInput, bulk_create_members
from tests.enrollment.conftest import World, row, xlsx

pytestmark = pytest.mark.django_db
COMPARED = [
    f.attname
    for f in Member._meta.concrete_fields
    if f.attname not in ("id", "created_at", "updated_at")
]


def test_roster_members_equal_bulk_create_members(world: World) -> None:
    t = world.tree
    people = [
        (
            "张伟",
            make_id_number("430102", date(1985, 3, 12), 11),
            "13800138000",
            "6217002870012345678",
            "中国银行",
            "男",
            "合同",
            "",
        ),
        (
            "李娜",
            make_id_number("430102", date(1979, 6, 5), 22),
            "",
            "",
            "",
            "女55",
            "在编",
            "female55",
        ),
        (
            "王芳",
            make_id_number("430102", date(1990, 1, 1), 24),
            "13907311234",
            "",
            "",
            "女50",
            "劳务派遣",
            "female50",
        ),
    ]
    batch = services.create_batch(
        acting_user=None, union=t.grassroots_1, plan_year=2026, today=date(2026, 3, 1)
    )
    services.attach_roster(
        acting_user=None,
        batch=batch,
        file_name="r.xlsx",
        content=xlsx(
            [
                row(
                    name=n,
                    id_number=i,
                    phone=p,
                    uscc=t.unit_1.uscc,
                    employment=e,
                    category=c,
                    account=a,
                    bank=b,
                )
                for n, i, p, a, b, c, e, _ in people
            ]
        ),
    )
    services.validate_batch(batch=batch, today=date(2026, 3, 1))
    services.confirm_batch(acting_user=None, batch=batch, today=date(2026, 3, 1))
    ours = {m.id_number_index: m for m in Member.objects.all()}
    # the same people through members.services (in a savepoint that is rolled back)
    reference = {}
    with transaction.atomic():
        sid = transaction.savepoint()
        Enrollment.objects.all().delete()
        Consent.objects.all().delete()
        HardshipRecord.objects.all().delete()
        Member.objects.all().delete()
        kinds = {"合同": "contract", "在编": "established", "劳务派遣": "dispatched"}
        created = bulk_create_members(
            acting_user=None,
            union=t.grassroots_1,
            rows=[
                MemberInput(
                    name=n,
                    id_number=i,
                    employment_type=kinds[e],
                    retirement_category=cat,
                    phone=p,
                    bank_account=a,
                    bank_name=b,
                    unit_id=t.unit_1.pk,
                )
                for n, i, p, a, b, _c, e, cat in people
            ],
        ).created
        for member in Member.objects.filter(pk__in=[m.pk for m in created]):
            reference[member.id_number_index] = member
        transaction.savepoint_rollback(sid)
    assert set(ours) == set(reference) and len(ours) == 3
    for index, member in ours.items():
        expected = reference[index]
        for name in COMPARED:
            assert getattr(member, name) == getattr(expected, name), name
    assert EnrollmentBatch.objects.get().members_created == 3


def test_insert_rows_fills_defaults_and_keeps_constraints(world: World) -> None:
    t = world.tree
    with pytest.raises(IntegrityError), transaction.atomic():
        # sex outside its check constraint: the database refuses it as it would from the ORM
        insert_rows(
            Member,
            (
                "name",
                "id_number_enc",
                "id_number_index",
                "id_number_masked",
                "birth_date",
                "sex",
                "union_id",
                "union_path",
                "retirement_category",
                "retirement_date",
            ),
            [
                (
                    "x",
                    b"\x01",
                    "i" * 32,
                    "m",
                    "1980-01-01",
                    "other",
                    t.grassroots_1.pk,
                    t.grassroots_1.path,
                    "male",
                    "2040-01-01",
                )
            ],
        )
    assert insert_rows(Member, ("name",), []) == 0
