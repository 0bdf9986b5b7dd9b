"""A used plan version cannot change, even by raw SQL (migration plans 0002: triggers on SQLite
and PostgreSQL). Runs on whichever database the suite uses (HUZHU_DATABASE_URL)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from huzhu.plans import services
from huzhu.plans.models import PlanStatus, PlanVersion
from tests.plans.conftest import People, hunan_text

pytestmark = pytest.mark.django_db

FROZEN_UPDATES = {
    "parameters": "'{}'",
    "source_yaml": "'code: X'",
    "parameters_hash": "'" + "0" * 64 + "'",
    "code": "'HUNAN-2026-X'",
    "name": "'改名'",
    "year": "2027",
    "region": "'430100'",
    "effective_from": "'2026-07-01'",
    "starts_on": "'2026-07-01'",
    "used_at": "NULL",
}


def _used_version(people: People) -> PlanVersion:
    version = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    services.activate_plan(acting_user=people.province_manager, plan_version=version)
    version.refresh_from_db()
    services.mark_used(version)
    return version


def _execute(sql: str, params: list[object]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


@pytest.mark.parametrize("column", sorted(FROZEN_UPDATES))
def test_raw_update_of_a_used_version_fails(people: People, column: str) -> None:
    version = _used_version(people)
    before = PlanVersion.objects.values().get(pk=version.pk)
    # Column names and literals come from FROZEN_UPDATES above, never from input.
    sql = f"UPDATE plans_planversion SET {column} = {FROZEN_UPDATES[column]} WHERE id = %s"  # noqa: S608
    with pytest.raises(IntegrityError, match="cannot change"), transaction.atomic():
        _execute(sql, [version.pk])
    assert PlanVersion.objects.values().get(pk=version.pk) == before


def test_orm_update_of_a_used_version_fails(people: People) -> None:
    version = _used_version(people)
    version.parameters = "{}"
    with pytest.raises(IntegrityError), transaction.atomic():
        version.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        PlanVersion.objects.filter(pk=version.pk).update(code="OTHER")
    assert PlanVersion.objects.get(pk=version.pk).code == "HUNAN-2026"


def test_raw_delete_of_a_used_version_fails(people: People) -> None:
    version = _used_version(people)
    with pytest.raises(IntegrityError, match="cannot be deleted"), transaction.atomic():
        _execute("DELETE FROM plans_planversion WHERE id = %s", [version.pk])
    assert PlanVersion.objects.filter(pk=version.pk).exists()


def test_status_of_a_used_version_may_still_change(people: People) -> None:
    version = _used_version(people)
    assert (
        _execute(
            "UPDATE plans_planversion SET status = %s WHERE id = %s",
            [PlanStatus.RETIRED.value, version.pk],
        )
        == 1
    )
    assert PlanVersion.objects.get(pk=version.pk).status == PlanStatus.RETIRED


def test_control_an_unused_version_is_not_frozen() -> None:
    """Control: the triggers fire on use, not on every row (else the tests above prove nothing)."""
    version = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    assert (
        _execute("UPDATE plans_planversion SET name = %s WHERE id = %s", ["改名", version.pk]) == 1
    )
    assert PlanVersion.objects.get(pk=version.pk).name == "改名"
    assert _execute("DELETE FROM plans_planversion WHERE id = %s", [version.pk]) == 1
