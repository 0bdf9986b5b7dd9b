"""The demo province (``huzhu demo``): structure, realistic valid data, the accounts of
INTERFACES.md §1, determinism and idempotency."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest

from huzhu.core.audit import first_problem
from huzhu.core.ids import is_valid_id_number, parse_id_number, validate_mobile, validate_uscc
from huzhu.core.models import AuditEvent
from huzhu.demo import DEMO_PASSWORD, REFERENCE_DAY, build_demo, print_accounts
from huzhu.members.models import Consent, FamilyMember, HardshipRecord, Member
from huzhu.orgs.models import Union, Unit, User, UserRole

MEMBERS = 200


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _age(birth: date) -> int:
    return (
        REFERENCE_DAY.year
        - birth.year
        - ((REFERENCE_DAY.month, REFERENCE_DAY.day) < (birth.month, birth.day))
    )


def _snapshot() -> dict[str, Any]:
    return {
        "unions": list(Union.objects.order_by("pk").values_list("pk", "name", "code", "path")),
        "units": list(Unit.objects.order_by("pk").values_list("pk", "name", "uscc", "union_id")),
        "users": list(User.objects.order_by("pk").values_list("pk", "username", "password")),
        "roles": list(UserRole.objects.order_by("pk").values_list("user_id", "role")),
        "members": list(Member.objects.order_by("pk").values_list("pk", "id_number_index")),
        "family": FamilyMember.objects.count(),
        "hardship": HardshipRecord.objects.count(),
        "consents": Consent.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


@pytest.fixture
def demo(db: None) -> None:
    build_demo(members=MEMBERS)


@pytest.mark.usefixtures("demo")
def test_the_union_tree() -> None:
    province = Union.objects.get(parent=None)
    assert (province.name, province.code, province.kind) == ("湖南省总工会", "430000", "provincial")
    cities = Union.objects.filter(kind="city").order_by("code")
    assert cities.count() == 14 and all(c.parent_id == province.pk for c in cities)
    assert (cities.first().name, cities.first().code) == ("长沙市总工会", "430100")  # type: ignore[union-attr]
    assert (cities.last().name, cities.last().code) == (  # type: ignore[union-attr]
        "湘西土家族苗族自治州总工会",
        "433100",
    )
    changsha = cities.get(code="430100")
    counties = dict(
        Union.objects.filter(parent=changsha, kind="county").values_list("code", "name")
    )
    assert counties == {
        "430102": "长沙市芙蓉区总工会",
        "430103": "长沙市天心区总工会",
        "430104": "长沙市岳麓区总工会",
        "430105": "长沙市开福区总工会",
        "430111": "长沙市雨花区总工会",
        "430112": "长沙市望城区总工会",
        "430121": "长沙县总工会",
        "430181": "浏阳市总工会",
        "430182": "宁乡市总工会",
    }
    other_counties = Union.objects.filter(kind="county").exclude(parent=changsha)
    assert {c.parent.code for c in other_counties.select_related("parent")} == {  # type: ignore[union-attr]
        "430200",
        "430300",
        "430600",
    }
    grassroots = list(Union.objects.filter(kind="grassroots"))
    assert 55 <= len(grassroots) <= 65
    for union in grassroots:
        assert union.uscc is not None and union.uscc.startswith("81")
        assert validate_uscc(union.uscc) == union.uscc == union.code
        assert union.name.endswith("工会委员会")
    units = list(Unit.objects.select_related("union"))
    assert len(units) >= len(grassroots)
    per_union = Counter(u.union_id for u in units)
    assert set(per_union.values()) <= {1, 2} and set(per_union) == {u.pk for u in grassroots}
    for unit in units:
        assert validate_uscc(unit.uscc) == unit.uscc and unit.uscc.startswith("91")
        assert unit.name.endswith("公司") and unit.industry
    federation = Union.objects.get(kind="federation")
    assert federation.name == "长沙市新就业形态劳动者工会联合会"
    assert federation.parent_id == changsha.pk
    assert first_problem() is None


@pytest.mark.usefixtures("demo")
def test_the_members_are_realistic_and_valid() -> None:
    members = list(Member.objects.select_related("union"))
    assert len(members) == MEMBERS
    sexes = Counter(m.sex for m in members)
    categories = Counter(m.retirement_category for m in members)
    assert sexes["male"] > 0 and sexes["female"] > 0
    assert categories["female50"] > 0 and categories["female55"] > 0
    assert categories["male"] == sexes["male"]
    for member in members:
        number = str(member.id_number_enc)
        parsed = parse_id_number(number)
        assert parsed.birth_date == member.birth_date and parsed.sex == member.sex
        assert number[:2] == "43"  # born in Hunan
        assert 18 <= _age(member.birth_date) <= 62
        assert member.retirement_date > REFERENCE_DAY  # nobody enrolled after retirement
        if member.phone_enc:
            assert validate_mobile(str(member.phone_enc)) == member.phone_enc
        if member.bank_account_enc:
            account = str(member.bank_account_enc)
            assert 16 <= len(account) <= 19 and _luhn_ok(account) and member.bank_name
        if member.union.kind == "federation":
            assert member.unit_id is None and member.employment_type == "new_employment"
        else:
            assert member.unit_id is not None and member.employment_type != "new_employment"
    assert sum(1 for m in members if m.union.kind == "federation") == MEMBERS // 20
    assert sum(1 for m in members if m.phone_enc) > MEMBERS * 0.85
    assert sum(1 for m in members if m.bank_account_enc) > MEMBERS * 0.7


@pytest.mark.usefixtures("demo")
def test_hardship_family_and_consents() -> None:
    hardship = list(HardshipRecord.objects.all())
    assert MEMBERS * 0.02 <= len(hardship) <= MEMBERS * 0.09
    assert {h.source for h in hardship} <= {"civil_affairs", "union_file"}
    assert all(h.evidence for h in hardship)
    assert any(h.valid_from > date(2026, 1, 1) and h.valid_from.year == 2026 for h in hardship)
    family = list(FamilyMember.objects.select_related("member"))
    assert MEMBERS * 0.04 <= len(family) <= MEMBERS * 0.16
    for person in family:
        assert is_valid_id_number(str(person.id_number_enc))
        assert person.id_number_index != person.member.id_number_index
    consents = Consent.objects.all()
    assert MEMBERS * 0.82 <= consents.count() <= MEMBERS * 0.97
    assert set(consents.values_list("channel", "purpose", "withdrawn_at")) == {
        ("paper_via_union", "medical_data", None)
    }


@pytest.mark.usefixtures("demo")
def test_the_demo_accounts() -> None:
    expected = {
        "province_admin": (
            "湖南省总工会",
            {"clerk", "reviewer", "finance", "auditor", "plan_manager"},
        ),
        "city_clerk": ("长沙市总工会", {"clerk"}),
        "county_clerk": ("长沙市芙蓉区总工会", {"clerk"}),
        "reviewer": ("长沙市总工会", {"reviewer"}),
        "finance": ("长沙市总工会", {"finance"}),
        "auditor": ("湖南省总工会", {"auditor"}),
        "sysadmin": ("湖南省总工会", {"sysadmin"}),
        "secadmin": ("湖南省总工会", {"secadmin"}),
        "auditadmin": ("湖南省总工会", {"auditadmin"}),
    }
    users = {u.username: u for u in User.objects.select_related("organisation")}
    assert set(users) == set(expected) | {"unit_clerk"}
    for username, (organisation, roles) in expected.items():
        user = users[username]
        assert (user.organisation.name, user.role_codes()) == (organisation, roles)  # type: ignore[union-attr]
        assert user.check_password(DEMO_PASSWORD) and user.is_active
    unit_clerk = users["unit_clerk"]
    county = Union.objects.get(code="430102")
    assert unit_clerk.organisation.kind == "grassroots"  # type: ignore[union-attr]
    assert unit_clerk.organisation.path.startswith(county.path)  # type: ignore[union-attr]
    assert unit_clerk.role_codes() == {"clerk"}
    assert Member.objects.filter(union=unit_clerk.organisation).exists()


@pytest.mark.django_db
def test_running_it_again_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    build_demo(members=MEMBERS)
    first = _snapshot()
    build_demo(members=MEMBERS)
    assert _snapshot() == first
    build_demo(members=MEMBERS * 2)  # members exist already: none are added
    assert _snapshot() == first
    print_accounts()
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8000/" in out and DEMO_PASSWORD in out
    for username in ("province_admin", "county_clerk", "unit_clerk", "auditadmin"):
        assert username in out
    assert "长沙市芙蓉区总工会" in out and "审计管理员" in out


@pytest.mark.django_db
def test_it_is_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    # Member generation alone: enrollments and invoices (demo_funding) would protect the members
    # from the deletion below; their own idempotency is tested in tests/contributions.
    monkeypatch.setattr("huzhu.demo_funding.build_demo_funding", lambda: None)
    build_demo(members=50)
    names = list(Union.objects.order_by("pk").values_list("name", "code"))
    people = list(Member.objects.order_by("pk").values_list("name", "id_number_index"))
    Member.objects.all().delete()
    build_demo(members=50)  # regenerates the same members from the same seed
    assert list(Union.objects.order_by("pk").values_list("name", "code")) == names
    assert list(Member.objects.order_by("pk").values_list("name", "id_number_index")) == people
