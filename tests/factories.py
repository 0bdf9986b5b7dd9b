"""Test data built through the services, so paths, indexes and audit events are real."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date

from huzhu.core.ids import make_id_number, make_uscc
from huzhu.members.models import Member
from huzhu.members.services import MemberInput, create_member
from huzhu.orgs.models import Union, Unit, User
from huzhu.orgs.services import create_staff_user, create_union, create_unit

PASSWORD = "Test-Passw0rd-2026"
_seq = itertools.count(1)


def uscc(prefix: str = "91430100") -> str:
    """A valid unified social credit code; ``prefix`` 81… for unions (GB 32100)."""
    n = next(_seq)
    return make_uscc(f"{prefix}MA{n:07d}"[:17])


def id_number(birth: date = date(1985, 3, 12), region: str = "430102", male: bool = True) -> str:
    n = next(_seq) % 499
    return make_id_number(region, birth, n * 2 + (1 if male else 2))


def union(parent: Union | None, name: str, kind: str, region_code: str = "") -> Union:
    code = uscc("81430100") if kind == "grassroots" else None
    region = region_code or ("" if code else f"{430000 + next(_seq) % 9000:06d}")
    return create_union(
        acting_user=None, parent=parent, name=name, kind=kind, region_code=region, uscc=code
    )


def unit(union_: Union, name: str = "测试单位") -> Unit:
    return create_unit(acting_user=None, union=union_, name=name, uscc=uscc())


def staff(org: Union, *roles: str, username: str | None = None) -> User:
    return create_staff_user(
        acting_user=None,
        username=username or f"user{next(_seq)}",
        password=PASSWORD,
        organisation=org,
        roles=set(roles),
        skip_password_policy=True,
    )


def member(
    union_: Union,
    unit_: Unit | None = None,
    *,
    name: str = "张伟",
    male: bool = True,
    birth: date = date(1985, 3, 12),
    number: str | None = None,
    phone: str = "",
    bank_account: str = "",
    employment_type: str = "contract",
) -> Member:
    return create_member(
        acting_user=None,
        union=union_,
        data=MemberInput(
            name=name,
            id_number=number or id_number(birth, male=male),
            employment_type=employment_type,
            retirement_category="" if male else "female55",
            phone=phone,
            bank_account=bank_account,
            unit_id=unit_.pk if unit_ else None,
        ),
    )


@dataclass
class Tree:
    """province → city A → county A1 → grassroots g1 (unit u1) ; county A2 → g2 (unit u2);
    city B → county B1 → g3 (unit u3). Used for the own/child/sibling/parent matrix."""

    province: Union
    city_a: Union
    county_a1: Union
    county_a2: Union
    grassroots_1: Union
    grassroots_2: Union
    city_b: Union
    county_b1: Union
    grassroots_3: Union
    unit_1: Unit
    unit_2: Unit
    unit_3: Unit


def tree() -> Tree:
    province = union(None, "湖南省总工会", "provincial", "430000")
    city_a = union(province, "长沙市总工会", "city", "430100")
    county_a1 = union(city_a, "芙蓉区总工会", "county", "430102")
    county_a2 = union(city_a, "天心区总工会", "county", "430103")
    g1 = union(county_a1, "芙蓉区某公司工会", "grassroots")
    g2 = union(county_a2, "天心区某公司工会", "grassroots")
    city_b = union(province, "株洲市总工会", "city", "430200")
    county_b1 = union(city_b, "荷塘区总工会", "county", "430202")
    g3 = union(county_b1, "荷塘区某公司工会", "grassroots")
    return Tree(
        province,
        city_a,
        county_a1,
        county_a2,
        g1,
        g2,
        city_b,
        county_b1,
        g3,
        unit(g1, "芙蓉某公司"),
        unit(g2, "天心某公司"),
        unit(g3, "荷塘某公司"),
    )
