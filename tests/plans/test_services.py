"""Plan versions: import, idempotence, copies, activation rules, first use (RULES.md §1,
ARCHITECTURE.md convention 2)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction

from huzhu.core.audit import Event
from huzhu.core.errors import ErrorCode, InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.orgs.access import NotPermitted
from huzhu.plans import services
from huzhu.plans.loader import PlanIntegrityError, engine_versions, plan_for
from huzhu.plans.models import PlanStatus, PlanVersion
from huzhu.plans.selectors import version_for, versions_for_year
from huzhu.rules.plan import load_plan_text
from tests.plans.conftest import PLAN_FILES, SHARED, People, hunan_text, variant

pytestmark = pytest.mark.django_db


def _events(event: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=event).order_by("seq"))


# --- import --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PLAN_FILES, ids=lambda p: Path(p).name)
def test_import_valid_plan_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    plan, errors = load_plan_text(text)
    assert errors == []
    assert plan is not None

    version = services.import_plan(acting_user=None, yaml_text=text, filename=path.name)

    assert version.status == PlanStatus.DRAFT
    assert (version.code, version.name, version.region, version.year) == (
        plan.code,
        plan.name,
        plan.region,
        plan.year,
    )
    assert version.effective_from == plan.effective_from
    assert version.starts_on == date(plan.year, 1, 1)
    assert version.source_yaml == text  # stored as uploaded, comments and citations included
    assert version.parameters == plan.parameters_json()
    assert version.parameters_hash == plan.parameters_hash()
    assert version.source_filename == path.name
    assert version.used_at is None
    [event] = _events(Event.PLAN_IMPORTED)
    assert event.object_id == str(version.pk)
    assert event.detail["code"] == plan.code
    assert event.detail["hash"] == plan.parameters_hash()
    assert event.actor_username == "系统"


def test_import_by_province_manager_is_audited_with_the_user(people: People) -> None:
    version = services.import_plan(
        acting_user=people.province_manager, yaml_text=hunan_text(), filename="hunan-2026.yaml"
    )
    assert version.imported_by == people.province_manager
    [event] = _events(Event.PLAN_IMPORTED)
    assert event.actor_id == people.province_manager.pk
    assert event.actor_username == "prov_plan"
    assert event.organisation_id == people.tree.province.pk


def test_invalid_plan_lists_every_error_with_its_key_path_and_stores_nothing() -> None:
    text = variant(
        hunan_text(),
        {
            "contribution": "250.00",
            "risk_reserve_rate": "0.12",
            "products.inpatient.bands[1].upto": "4000.00",
            "products.critical_illness.mild": "3500.00",
        },
    )
    with pytest.raises(InvalidInput) as caught:
        services.import_plan(acting_user=None, yaml_text=text, filename="bad.yaml")
    by_field = caught.value.by_field()
    assert set(by_field) == {
        "contribution",
        "risk_reserve_rate",
        "products.inpatient.bands[1].upto",
        "products.critical_illness.mild",
    }
    assert "湘政办发〔2025〕58号（五）" in by_field["contribution"][0]
    assert "50%" in by_field["contribution"][0]
    assert "湘政办发〔2025〕58号（八）" in by_field["risk_reserve_rate"][0]
    assert PlanVersion.objects.count() == 0
    assert AuditEvent.objects.filter(event=Event.PLAN_IMPORTED).count() == 0


def test_yaml_syntax_error_and_unknown_key_are_reported() -> None:
    with pytest.raises(InvalidInput) as caught:
        services.import_plan(acting_user=None, yaml_text="code: [unclosed\n", filename="x.yaml")
    [error] = caught.value.errors
    assert error.field == ""
    assert error.message.startswith("YAML 格式错误")

    with pytest.raises(InvalidInput) as caught:
        services.import_plan(
            acting_user=None, yaml_text=hunan_text() + "surplus_ratio: '0.1'\n", filename="x.yaml"
        )
    assert [e.field for e in caught.value.errors] == ["surplus_ratio"]
    assert PlanVersion.objects.count() == 0


def test_reimport_is_idempotent() -> None:
    text = hunan_text()
    first = services.import_plan(acting_user=None, yaml_text=text, filename="a.yaml")
    again = services.import_plan(acting_user=None, yaml_text=text, filename="b.yaml")
    assert again.pk == first.pk
    # Only a citation or a comment differs: the parameters (and their hash) are the same.
    reworded = text.replace("# 湖南省在职职工", "# 修订说明 湖南省在职职工").replace(
        "湖南省2026年度城乡居民基本医疗保险个人缴费标准", "湖南省医保局公布的2026年度标准"
    )
    assert reworded != text
    assert (
        services.import_plan(acting_user=None, yaml_text=reworded, filename="c.yaml").pk == first.pk
    )
    assert PlanVersion.objects.count() == 1
    assert len(_events(Event.PLAN_IMPORTED)) == 1
    first.refresh_from_db()
    assert first.source_yaml == text and first.source_filename == "a.yaml"


def test_same_code_with_other_parameters_is_refused() -> None:
    services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="a.yaml")
    changed = variant(hunan_text(), {"contribution": "150.00"})
    with pytest.raises(InvalidInput) as caught:
        services.import_plan(acting_user=None, yaml_text=changed, filename="b.yaml")
    [error] = caught.value.errors
    assert (error.field, error.code) == ("code", ErrorCode.DUPLICATE)
    assert "新的计划编码" in error.message
    assert PlanVersion.objects.count() == 1


def test_import_scope(people: People) -> None:
    # A city plan manager may draft its own city's plan, not the province's.
    city_plan = variant(hunan_text(), {"code": "CHANGSHA-2026", "region": "430100"})
    version = services.import_plan(
        acting_user=people.city_manager, yaml_text=city_plan, filename="cs.yaml"
    )
    assert version.region == "430100"
    with pytest.raises(InvalidInput) as caught:
        services.import_plan(
            acting_user=people.city_manager, yaml_text=hunan_text(), filename="hn.yaml"
        )
    assert [e.field for e in caught.value.errors] == ["region"]
    # The Hunan provincial federation does not import a Henan city's plan.
    other_province = PLAN_FILES[1].read_text(encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        services.import_plan(
            acting_user=people.province_manager, yaml_text=other_province, filename="pds.yaml"
        )
    assert [e.field for e in caught.value.errors] == ["region"]
    # A clerk holds no import permission at all.
    with pytest.raises(NotPermitted):
        services.import_plan(acting_user=people.city_clerk, yaml_text=city_plan, filename="x")
    assert PlanVersion.objects.count() == 1


# --- activation ----------------------------------------------------------------------------


def test_province_manager_activates_and_it_is_audited(people: People) -> None:
    version = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="h.yaml")
    services.activate_plan(acting_user=people.province_manager, plan_version=version)
    version.refresh_from_db()
    assert version.status == PlanStatus.ACTIVE
    assert version.activated_by == people.province_manager
    assert version.activated_at is not None
    [event] = _events(Event.PLAN_ACTIVATED)
    assert (event.actor_username, event.object_id) == ("prov_plan", str(version.pk))
    assert event.detail["replaced"] == []

    with pytest.raises(InvalidInput) as caught:
        services.activate_plan(acting_user=people.province_manager, plan_version=version)
    assert [e.code for e in caught.value.errors] == [ErrorCode.STATE]
    assert len(_events(Event.PLAN_ACTIVATED)) == 1


@pytest.mark.parametrize("who", ["city_clerk", "city_manager", "province_clerk", "secadmin"])
def test_activation_is_refused_below_province_or_without_permission(
    people: People, who: str
) -> None:
    version = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="h.yaml")
    with pytest.raises(NotPermitted):
        services.activate_plan(acting_user=getattr(people, who), plan_version=version)
    version.refresh_from_db()
    assert version.status == PlanStatus.DRAFT
    assert _events(Event.PLAN_ACTIVATED) == []


def test_province_activates_its_city_plan_but_not_another_province(people: People) -> None:
    city_plan = variant(hunan_text(), {"code": "CHANGSHA-2026", "region": "430100"})
    city = services.import_plan(acting_user=people.city_manager, yaml_text=city_plan, filename="")
    services.activate_plan(acting_user=people.province_manager, plan_version=city)
    assert PlanVersion.objects.get(pk=city.pk).status == PlanStatus.ACTIVE

    henan = services.import_plan(
        acting_user=None, yaml_text=PLAN_FILES[1].read_text(encoding="utf-8"), filename=""
    )
    with pytest.raises(NotPermitted):
        services.activate_plan(acting_user=people.province_manager, plan_version=henan)
    assert PlanVersion.objects.get(pk=henan.pk).status == PlanStatus.DRAFT


def test_activating_a_version_retires_the_one_with_the_same_start(people: People) -> None:
    first = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    services.activate_plan(acting_user=people.province_manager, plan_version=first)
    corrected = variant(hunan_text(), {"code": "HUNAN-2026-B", "min_age": 18})
    second = services.import_plan(acting_user=None, yaml_text=corrected, filename="")

    services.activate_plan(acting_user=people.province_manager, plan_version=second)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (PlanStatus.RETIRED, PlanStatus.ACTIVE)
    assert first.retired_by == people.province_manager
    [retired] = _events(Event.PLAN_RETIRED)
    assert retired.object_id == str(first.pk)
    assert retired.detail["replaced_by"] == "HUNAN-2026-B"
    assert _events(Event.PLAN_ACTIVATED)[-1].detail["replaced"] == ["HUNAN-2026"]
    assert versions_for_year("430000", 2026) == [second]


def test_database_allows_one_active_version_per_start() -> None:
    first = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    second = services.import_plan(
        acting_user=None, yaml_text=variant(hunan_text(), {"code": "HUNAN-2026-B"}), filename=""
    )
    # Jan 1 written out collides with "no effective_from" (both start on Jan 1).
    third = services.import_plan(
        acting_user=None,
        yaml_text=variant(hunan_text(), {"code": "HUNAN-2026-C", "effective_from": "2026-01-01"}),
        filename="",
    )
    assert third.effective_from == date(2026, 1, 1) and third.starts_on == first.starts_on
    PlanVersion.objects.filter(pk=first.pk).update(status=PlanStatus.ACTIVE)
    for other in (second, third):
        with pytest.raises(IntegrityError), transaction.atomic():
            PlanVersion.objects.filter(pk=other.pk).update(status=PlanStatus.ACTIVE)
    # Retired and draft versions are not limited.
    PlanVersion.objects.filter(pk__in=[second.pk, third.pk]).update(status=PlanStatus.RETIRED)
    assert PlanVersion.objects.filter(status=PlanStatus.ACTIVE).count() == 1


def test_status_check_constraint() -> None:
    version = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    with pytest.raises(IntegrityError), transaction.atomic():
        PlanVersion.objects.filter(pk=version.pk).update(status="approved")


def test_retire(people: People) -> None:
    version = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    with pytest.raises(InvalidInput):
        services.retire_plan(acting_user=people.province_manager, plan_version=version)
    services.activate_plan(acting_user=people.province_manager, plan_version=version)
    with pytest.raises(NotPermitted):
        services.retire_plan(acting_user=people.city_clerk, plan_version=version)
    services.retire_plan(acting_user=people.province_manager, plan_version=version)
    version.refresh_from_db()
    assert version.status == PlanStatus.RETIRED
    assert version.retired_by == people.province_manager
    assert [e.object_id for e in _events(Event.PLAN_RETIRED)] == [str(version.pk)]
    assert versions_for_year("430000", 2026) == []


def test_activation_revalidates_the_stored_text(people: People) -> None:
    version = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    # A row changed behind the services' back (the version is unused, so no trigger fires).
    PlanVersion.objects.filter(pk=version.pk).update(
        source_yaml=variant(hunan_text(), {"contribution": "300.00"})
    )
    version.refresh_from_db()
    with pytest.raises(InvalidInput) as caught:
        services.activate_plan(acting_user=people.province_manager, plan_version=version)
    assert [e.field for e in caught.value.errors] == ["contribution"]
    assert PlanVersion.objects.get(pk=version.pk).status == PlanStatus.DRAFT


# --- copies (revisions within the year) ----------------------------------------------------


def test_copy_with_effective_date_and_engine_selection(people: People) -> None:
    source = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    services.activate_plan(acting_user=people.province_manager, plan_version=source)
    revised = variant(
        hunan_text(),
        {
            "code": "HUNAN-2026-07",
            "effective_from": "2026-07-01",
            "products.inpatient.deductible": "800.00",
        },
    )
    copy = services.copy_plan_version(
        acting_user=people.province_manager, source=source, yaml_text=revised
    )
    assert copy.previous == source
    assert copy.status == PlanStatus.DRAFT
    assert (copy.effective_from, copy.starts_on) == (date(2026, 7, 1), date(2026, 7, 1))
    assert copy.source_filename == "HUNAN-2026-07.yaml"
    assert _events(Event.PLAN_IMPORTED)[-1].detail["copied_from"] == "HUNAN-2026"

    services.activate_plan(acting_user=people.province_manager, plan_version=copy)
    source.refresh_from_db()
    assert source.status == PlanStatus.ACTIVE  # another start date: both stay in force
    active = versions_for_year("430000", 2026)
    assert [v.code for v in active] == ["HUNAN-2026", "HUNAN-2026-07"]
    versions = engine_versions(active)
    assert versions is not None
    assert versions.select(date(2026, 6, 30)).code == "HUNAN-2026"
    assert versions.select(date(2026, 7, 1)).code == "HUNAN-2026-07"
    assert versions.select(date(2026, 7, 1)).inpatient.deductible == 80000
    june = version_for("430000", date(2026, 6, 30))
    july = version_for("430000", date(2026, 12, 31))
    assert june is not None and july is not None
    assert (june.code, july.code) == ("HUNAN-2026", "HUNAN-2026-07")
    assert version_for("430000", date(2027, 1, 5)) is None
    assert engine_versions([]) is None


def test_copy_rules(people: People) -> None:
    source = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    cases = {
        # same code as the source
        "code": variant(hunan_text(), {"effective_from": "2026-07-01"}),
        # no effective date
        "effective_from": variant(hunan_text(), {"code": "HUNAN-2026-B"}),
        # another pooling area
        "region": variant(
            hunan_text(),
            {"code": "HUNAN-2026-B", "region": "430100", "effective_from": "2026-07-01"},
        ),
    }
    for field, text in cases.items():
        with pytest.raises(InvalidInput) as caught:
            services.copy_plan_version(
                acting_user=people.province_manager, source=source, yaml_text=text
            )
        assert [e.field for e in caught.value.errors] == [field], field
    # An effective date outside the coverage year is the engine's error, with its key path.
    outside = variant(hunan_text(), {"code": "HUNAN-2026-B", "effective_from": "2027-02-01"})
    with pytest.raises(InvalidInput) as caught:
        services.copy_plan_version(
            acting_user=people.province_manager, source=source, yaml_text=outside
        )
    assert [e.field for e in caught.value.errors] == ["effective_from"]
    assert "2026" in caught.value.errors[0].message
    # A year change is refused (next year's plan is imported on its own).
    next_year = variant(
        hunan_text(),
        {
            "code": "HUNAN-2027",
            "year": 2027,
            "effective_from": "2027-03-01",
            "claim_deadline": "2028-03-31",
        },
    )
    with pytest.raises(InvalidInput) as caught:
        services.copy_plan_version(
            acting_user=people.province_manager, source=source, yaml_text=next_year
        )
    assert [e.field for e in caught.value.errors] == ["year"]
    assert PlanVersion.objects.count() == 1


# --- drafts, first use and immutability ----------------------------------------------------


def test_unused_draft_can_be_corrected_but_not_once_active_or_used(people: People) -> None:
    draft = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    corrected = variant(hunan_text(), {"contribution": "110.00"})
    services.update_draft(
        acting_user=people.province_manager, plan_version=draft, yaml_text=corrected
    )
    draft.refresh_from_db()
    assert draft.source_yaml == corrected
    assert plan_for(draft).contribution == 11000
    [event] = list(AuditEvent.objects.filter(event=services.EVENT_PLAN_UPDATED))
    assert event.detail["hash"] == draft.parameters_hash != event.detail["previous_hash"]

    services.activate_plan(acting_user=people.province_manager, plan_version=draft)
    draft.refresh_from_db()
    with pytest.raises(InvalidInput) as caught:
        services.update_draft(
            acting_user=people.province_manager, plan_version=draft, yaml_text=hunan_text()
        )
    assert [e.code for e in caught.value.errors] == [ErrorCode.STATE]
    services.mark_used(draft)
    services.retire_plan(acting_user=people.province_manager, plan_version=draft)
    draft.refresh_from_db()
    with pytest.raises(InvalidInput):
        services.update_draft(
            acting_user=people.province_manager, plan_version=draft, yaml_text=hunan_text()
        )
    assert PlanVersion.objects.get(pk=draft.pk).source_yaml == corrected


def test_mark_used(people: People) -> None:
    version = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    with pytest.raises(InvalidInput):
        services.mark_used(version)  # a draft prices nothing
    services.activate_plan(acting_user=people.province_manager, plan_version=version)
    version.refresh_from_db()
    assert services.mark_used(version) is True
    first_use = version.used_at
    assert first_use is not None
    stale = PlanVersion.objects.get(pk=version.pk)
    assert services.mark_used(stale) is False
    assert services.mark_used(PlanVersion.objects.get(pk=version.pk)) is False
    assert PlanVersion.objects.get(pk=version.pk).used_at == first_use
    assert AuditEvent.objects.filter(event=services.EVENT_PLAN_USED).count() == 1


def test_plan_for_checks_the_hash_and_caches() -> None:
    version = services.import_plan(
        acting_user=None, yaml_text=SHARED.read_text(encoding="utf-8"), filename=""
    )
    plan = plan_for(version)
    assert plan.code == "HUNAN-2026"
    assert plan.parameters_hash() == version.parameters_hash
    assert plan_for(PlanVersion.objects.get(pk=version.pk)) is plan  # cached by hash

    tampered = variant(hunan_text(), {"contribution": "100.00"})
    forged, _ = load_plan_text(tampered)
    assert forged is not None
    PlanVersion.objects.filter(pk=version.pk).update(
        parameters=forged.parameters_json(), parameters_hash="0" * 64
    )
    with pytest.raises(PlanIntegrityError):
        plan_for(PlanVersion.objects.get(pk=version.pk))


def test_a_used_retired_version_can_be_put_back_in_force(people: People) -> None:
    """Activation changes the status only, so it is allowed on a used version (the triggers
    leave the status free); the replaced version is retired as usual."""
    first = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    services.activate_plan(acting_user=people.province_manager, plan_version=first)
    first.refresh_from_db()
    services.mark_used(first)
    second = services.import_plan(
        acting_user=None, yaml_text=variant(hunan_text(), {"code": "HUNAN-2026-B"}), filename=""
    )
    services.activate_plan(acting_user=people.province_manager, plan_version=second)
    first.refresh_from_db()
    assert first.status == PlanStatus.RETIRED and first.used_at is not None

    services.activate_plan(acting_user=people.province_manager, plan_version=first)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (PlanStatus.ACTIVE, PlanStatus.RETIRED)
    assert first.source_yaml == hunan_text()


def test_code_and_name_lengths_are_checked_before_storing() -> None:
    text = variant(hunan_text(), {"code": "H" * 65, "name": "名" * 201})
    with pytest.raises(InvalidInput) as caught:
        services.import_plan(acting_user=None, yaml_text=text, filename="")
    assert [e.field for e in caught.value.errors] == ["code", "name"]
    assert caught.value.errors[0].message == "计划编码最多 64 个字符（现为 65 个）"
    assert PlanVersion.objects.count() == 0
