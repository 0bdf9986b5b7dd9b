"""The demo province (``huzhu demo``, INTERFACES.md §1): 湖南省总工会 with its 14 prefecture
unions, the districts and counties of 长沙市 and a few of 株洲、湘潭、岳阳, ~60 grassroots unions
with their employers, a new-employment-form federation, ~5,000 synthetic members, the demo accounts.

Deterministic (a fixed random seed: every random draw happens whatever the database holds) and
idempotent (organisations, units and accounts are looked up by code / USCC / username first;
members are generated only when the demo province has none yet), so running it twice changes
nothing. Everything is written through the services, members in bulk (``bulk_create_members``).
All personal data is synthetic: ID numbers carry valid check characters but belong to nobody.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import transaction

from huzhu.core.context import RequestInfo, current_request
from huzhu.core.ids import (
    USCC_CHARSET,
    RetirementCategory,
    make_id_number,
    make_uscc,
    statutory_retirement_date,
)
from huzhu.members.models import (
    EmploymentType,
    FamilyRelation,
    HardshipSource,
    Member,
)
from huzhu.members.services import (
    MemberInput,
    add_family_member,
    bulk_create_members,
    bulk_grant_consents,
    record_hardship,
)
from huzhu.orgs.models import Union, UnionKind, Unit, User, subtree_q
from huzhu.orgs.roles import Role
from huzhu.orgs.services import create_staff_user, create_union, create_unit

DEMO_PASSWORD = "Huzhu-Demo-2026"  # noqa: S105 - the documented demo password (INTERFACES §1)
DEMO_URL = "http://127.0.0.1:8000/"
SEED = 20260101
PLAN_YEAR = 2026
REFERENCE_DAY = date(PLAN_YEAR, 1, 1)  # ages and retirement are judged at the plan year's start

PROVINCE_NAME = "湖南省总工会"
PROVINCE_REGION = "430000"
CITIES: tuple[tuple[str, str], ...] = (
    ("430100", "长沙市"),
    ("430200", "株洲市"),
    ("430300", "湘潭市"),
    ("430400", "衡阳市"),
    ("430500", "邵阳市"),
    ("430600", "岳阳市"),
    ("430700", "常德市"),
    ("430800", "张家界市"),
    ("430900", "益阳市"),
    ("431000", "郴州市"),
    ("431100", "永州市"),
    ("431200", "怀化市"),
    ("431300", "娄底市"),
    ("433100", "湘西土家族苗族自治州"),
)
# County-level unions of the demo (GB/T 2260): all of 长沙市, a few of three other cities.
COUNTIES: dict[str, tuple[tuple[str, str], ...]] = {
    "430100": (
        ("430102", "芙蓉区"),
        ("430103", "天心区"),
        ("430104", "岳麓区"),
        ("430105", "开福区"),
        ("430111", "雨花区"),
        ("430112", "望城区"),
        ("430121", "长沙县"),
        ("430181", "浏阳市"),
        ("430182", "宁乡市"),
    ),
    "430200": (("430202", "荷塘区"), ("430203", "芦淞区"), ("430211", "天元区")),
    "430300": (("430302", "雨湖区"), ("430304", "岳塘区"), ("430321", "湘潭县")),
    "430600": (("430602", "岳阳楼区"), ("430621", "岳阳县")),
}
# Birth-place region codes for cities without county unions in the demo.
BIRTH_REGIONS: dict[str, tuple[str, ...]] = {
    "430400": ("430405", "430407", "430421", "430481"),
    "430500": ("430502", "430522", "430581"),
    "430700": ("430702", "430703", "430723"),
    "430800": ("430802", "430821"),
    "430900": ("430902", "430903", "430923"),
    "431000": ("431002", "431003", "431081"),
    "431100": ("431102", "431103", "431126"),
    "431200": ("431202", "431281"),
    "431300": ("431302", "431322", "431382"),
    "433100": ("433101", "433127"),
}
# Grassroots unions per county (by region code); and a few directly under a city union.
GRASSROOTS_PER_COUNTY: dict[str, int] = {
    "430102": 8,
    "430103": 5,
    "430104": 5,
    "430105": 5,
    "430111": 5,
    "430112": 3,
    "430121": 3,
    "430181": 3,
    "430182": 3,
    "430202": 2,
    "430203": 2,
    "430211": 2,
    "430302": 2,
    "430304": 2,
    "430321": 2,
    "430602": 2,
    "430621": 2,
}
GRASSROOTS_UNDER_CITY: tuple[str, ...] = ("430400", "430700", "431000", "431200")
FEDERATION_NAME = "长沙市新就业形态劳动者工会联合会"
FEDERATION_SHARE = 0.05  # of all members: riders, couriers, drivers without a unit


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵"
)
_MALE_CHARS = "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林欢阳建国志文博亮峰"
_FEMALE_CHARS = "芳娜敏静丽艳娟霞秀玲桂英华红梅琳雪婷慧莉萍颖佳倩欣怡璐瑶晶燕兰凤琴云"
_BRAND_WORDS = _words(
    "华远 恒信 湘江 麓山 星城 中联 金霞 开元 天歌 博瑞 鑫达 友谊 三辉 湘楚 橘洲 宏图 嘉禾 瑞丰 "
    "晟达 创源 远大 蓝天 长青 德润 兴湘 洞庭 楚天 鼎盛 永泰 信达 伟业 和顺 百川 汇通 凯旋 锦程 "
    "新航 云帆 泰和 润泽 广源 盛世 众诚 宝信 安达 利民 万家 康宁 嘉园 天成 金桥 银河 华兴 湘郡"
)
_INDUSTRIES: tuple[tuple[str, str], ...] = (
    ("科技", "信息传输、软件和信息技术服务业"),
    ("软件", "信息传输、软件和信息技术服务业"),
    ("电子", "制造业"),
    ("机械制造", "制造业"),
    ("新材料", "制造业"),
    ("汽车零部件", "制造业"),
    ("食品", "制造业"),
    ("医药", "制造业"),
    ("建设工程", "建筑业"),
    ("物流", "交通运输、仓储和邮政业"),
    ("商贸", "批发和零售业"),
    ("餐饮管理", "住宿和餐饮业"),
    ("酒店管理", "住宿和餐饮业"),
    ("物业服务", "租赁和商务服务业"),
    ("环保科技", "水利、环境和公共设施管理业"),
    ("农业发展", "农、林、牧、渔业"),
    ("印务", "制造业"),
    ("纺织", "制造业"),
)
_LEGAL_FORMS = ("有限公司", "有限公司", "有限责任公司", "股份有限公司")
_PARKS = ("科技园", "创业园", "商务区", "工业园", "物流园", "产业园")
_BANKS: tuple[tuple[str, str], ...] = (
    ("622202", "中国工商银行"),
    ("622848", "中国农业银行"),
    ("621700", "中国建设银行"),
    ("621661", "中国银行"),
    ("622262", "交通银行"),
    ("621799", "中国邮政储蓄银行"),
    ("622180", "长沙银行"),
    ("623595", "湖南农村信用社"),
)
_PHONE_PREFIXES = _words(
    "130 131 132 133 135 136 137 138 139 150 151 152 153 155 156 157 158 159 166 173 175 176 "
    "177 180 181 182 183 185 186 187 188 189 191 198 199"
)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    organisation_code: str  # filled in for the unit clerk once the grassroots union is known
    roles: frozenset[str]
    full_name: str


@dataclass
class _UnionSpec:
    name: str
    kind: str
    region_code: str
    uscc: str | None
    parent_code: str | None  # None: the province
    units: list[_UnitSpec] = field(default_factory=list)
    birth_regions: tuple[str, ...] = ()

    @property
    def code(self) -> str:
        return self.uscc or self.region_code


@dataclass(frozen=True)
class _UnitSpec:
    name: str
    uscc: str
    industry: str
    address: str
    contact_name: str
    established_share: float


@dataclass
class _Plan:
    unions: list[_UnionSpec]
    unit_clerk_union_code: str


# --- generation (pure: depends on the seed only) ----------------------------------------------
def _luhn_complete(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return partial + str((10 - total % 10) % 10)


class _Names:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.companies: set[str] = set()
        self.codes: set[str] = set()

    def person(self, male: bool, surname: str | None = None) -> str:
        chars = _MALE_CHARS if male else _FEMALE_CHARS
        given = self.rng.choice(chars)
        if self.rng.random() < 0.7:
            given += self.rng.choice(chars)
        return (surname or self.rng.choice(_SURNAMES)) + given

    def uscc(self, head: str) -> str:
        """``head`` is the first 8 characters (authority, type, region); the code is unique."""
        while True:
            body = "".join(self.rng.choice(USCC_CHARSET) for _ in range(6))
            middle = ("MA4" if head.startswith("91") else "MC0") + body
            code = make_uscc(head + middle)
            if code not in self.codes:
                self.codes.add(code)
                return code

    def company(self, place: str) -> tuple[str, str]:
        while True:
            brand = self.rng.choice(_BRAND_WORDS)
            trade, industry = self.rng.choice(_INDUSTRIES)
            prefix = self.rng.choice(("湖南", place, place, place))
            name = f"{prefix}{brand}{trade}{self.rng.choice(_LEGAL_FORMS)}"
            if name not in self.companies:
                self.companies.add(name)
                return name, industry


def _short(place: str) -> str:
    """长沙市 → 长沙 (for company names); 湘西土家族苗族自治州 → 湘西."""
    if place.startswith("湘西"):
        return "湘西"
    return place[:-1] if place[-1] in "市区县" and len(place) > 2 else place


def _county_union_name(city: str, county: str) -> str:
    return f"{city}{county}总工会" if county.endswith("区") else f"{county}总工会"


def _plan(rng: random.Random) -> _Plan:
    names = _Names(rng)
    city_names = dict(CITIES)
    unions: list[_UnionSpec] = [
        _UnionSpec(PROVINCE_NAME, UnionKind.PROVINCIAL, PROVINCE_REGION, None, None)
    ]
    for code, city in CITIES:
        regions = tuple(c for c, _ in COUNTIES.get(code, ())) or BIRTH_REGIONS[code]
        unions.append(
            _UnionSpec(f"{city}总工会", UnionKind.CITY, code, None, PROVINCE_REGION, [], regions)
        )
    for city_code, counties in COUNTIES.items():
        for code, county in counties:
            unions.append(
                _UnionSpec(
                    _county_union_name(city_names[city_code], county),
                    UnionKind.COUNTY,
                    code,
                    None,
                    city_code,
                    [],
                    (code,),
                )
            )

    def grassroots(
        region: str, parent_code: str, place: str, city: str, births: tuple[str, ...]
    ) -> None:
        two_units = rng.random() < 0.3
        if two_units:
            union_name = f"{place}{rng.choice(_PARKS)}企业联合工会委员会"
            while any(u.name == union_name for u in unions):
                union_name = f"{place}{rng.choice(_PARKS)}企业联合工会委员会"
        specs = []
        for _ in range(2 if two_units else 1):
            company, industry = names.company(_short(city))
            specs.append(
                _UnitSpec(
                    name=company,
                    uscc=names.uscc(f"91{region}"),
                    industry=industry,
                    address=f"{place}{rng.choice(_BRAND_WORDS)}路{rng.randint(1, 399)}号",
                    contact_name=names.person(rng.random() < 0.5),
                    established_share=0.3 if "股份" in company else 0.1,
                )
            )
        if not two_units:
            union_name = f"{specs[0].name}工会委员会"
        unions.append(
            _UnionSpec(
                union_name,
                UnionKind.GRASSROOTS,
                region,
                names.uscc(f"81{region}"),
                parent_code,
                specs,
                births,
            )
        )

    county_names = {code: name for counties in COUNTIES.values() for code, name in counties}
    city_of = {code: city for city, counties in COUNTIES.items() for code, _ in counties}
    unit_clerk_union_code = ""
    for region, count in GRASSROOTS_PER_COUNTY.items():
        city_code = city_of[region]
        place = (
            f"{city_names[city_code]}{county_names[region]}"
            if county_names[region].endswith("区")
            else county_names[region]
        )
        births = (region, *[c for c, _ in COUNTIES[city_code] if c != region][:2])
        for _ in range(count):
            grassroots(region, region, place, city_names[city_code], births)
            if region == "430102" and not unit_clerk_union_code:
                unit_clerk_union_code = unions[-1].code
    for city_code in GRASSROOTS_UNDER_CITY:
        city = city_names[city_code]
        grassroots(city_code, city_code, city, city, BIRTH_REGIONS[city_code])
    unions.append(
        _UnionSpec(
            FEDERATION_NAME,
            UnionKind.FEDERATION,
            "430100",
            names.uscc("81430100"),
            "430100",
            [],
            tuple(c for c, _ in COUNTIES["430100"]),
        )
    )
    return _Plan(unions, unit_clerk_union_code)


def demo_accounts(plan_unit_clerk_code: str) -> list[DemoAccount]:
    """The accounts of INTERFACES.md §1."""
    business = frozenset({Role.CLERK, Role.REVIEWER, Role.FINANCE, Role.AUDITOR, Role.PLAN_MANAGER})
    return [
        DemoAccount("province_admin", PROVINCE_REGION, business, "省总经办负责人"),
        DemoAccount("city_clerk", "430100", frozenset({Role.CLERK}), "市总经办员"),
        DemoAccount("county_clerk", "430102", frozenset({Role.CLERK}), "区总经办员"),
        DemoAccount("unit_clerk", plan_unit_clerk_code, frozenset({Role.CLERK}), "基层工会经办员"),
        DemoAccount("reviewer", "430100", frozenset({Role.REVIEWER}), "市总审核员"),
        DemoAccount("finance", "430100", frozenset({Role.FINANCE}), "市总财务"),
        DemoAccount("auditor", PROVINCE_REGION, frozenset({Role.AUDITOR}), "省总稽核员"),
        DemoAccount("sysadmin", PROVINCE_REGION, frozenset({Role.SYSTEM_ADMIN}), "系统管理员"),
        DemoAccount("secadmin", PROVINCE_REGION, frozenset({Role.SECURITY_ADMIN}), "安全管理员"),
        DemoAccount("auditadmin", PROVINCE_REGION, frozenset({Role.AUDIT_ADMIN}), "审计管理员"),
    ]


DEMO_USERNAMES = (
    "province_admin",
    "city_clerk",
    "county_clerk",
    "unit_clerk",
    "reviewer",
    "finance",
    "auditor",
    "sysadmin",
    "secadmin",
    "auditadmin",
)


@dataclass(frozen=True)
class _Person:
    name: str
    id_number: str
    male: bool
    category: str
    birth: date


def _birth_date(rng: random.Random, category: RetirementCategory) -> date:
    """Ages 18–62 at the reference day, weighted towards 25–45; nobody already retired."""
    while True:
        age = min(62.99, max(18.0, rng.triangular(18, 63, 36)))
        birth = REFERENCE_DAY - timedelta(days=int(age * 365.25))
        if statutory_retirement_date(birth, category) > REFERENCE_DAY:
            return birth


class _People:
    def __init__(self, rng: random.Random, names: _Names) -> None:
        self.rng = rng
        self.names = names
        self.numbers: set[str] = set()

    def id_number(self, region: str, birth: date, male: bool) -> str:
        while True:
            sequence = self.rng.randrange(0, 500) * 2 + (1 if male else 0)
            number = make_id_number(region, birth, sequence)
            if number not in self.numbers:
                self.numbers.add(number)
                return number

    def member(self, regions: tuple[str, ...]) -> _Person:
        rng = self.rng
        male = rng.random() < 0.56
        if male:
            category = RetirementCategory.MALE
        else:
            category = (
                RetirementCategory.FEMALE50 if rng.random() < 0.4 else RetirementCategory.FEMALE55
            )
        birth = _birth_date(rng, category)
        if rng.random() < 0.85:
            region = rng.choice(regions)
        else:  # born elsewhere in the province
            region = rng.choice(rng.choice(list(BIRTH_REGIONS.values())))
        return _Person(
            self.names.person(male), self.id_number(region, birth, male), male, category, birth
        )

    def phone(self) -> str:
        return self.rng.choice(_PHONE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"

    def bank_account(self) -> tuple[str, str]:
        bin_, bank = self.rng.choice(_BANKS)
        body = bin_ + "".join(str(self.rng.randrange(10)) for _ in range(12))
        return _luhn_complete(body), bank


# --- writing ---------------------------------------------------------------------------------
def _ensure_unions(plan: _Plan) -> dict[str, Union]:
    existing = {u.code: u for u in Union.objects.filter(code__in=[s.code for s in plan.unions])}
    for spec in plan.unions:
        if spec.code in existing:
            continue
        parent = existing[spec.parent_code] if spec.parent_code else None
        existing[spec.code] = create_union(
            acting_user=None,
            parent=parent,
            name=spec.name,
            kind=spec.kind,
            region_code=spec.region_code,
            uscc=spec.uscc,
        )
    return existing


def _ensure_units(plan: _Plan, unions: dict[str, Union]) -> dict[str, Unit]:
    wanted = [u.uscc for s in plan.unions for u in s.units]
    existing = {u.uscc: u for u in Unit.objects.filter(uscc__in=wanted)}
    for spec in plan.unions:
        for unit in spec.units:
            if unit.uscc in existing:
                continue
            existing[unit.uscc] = create_unit(
                acting_user=None,
                union=unions[spec.code],
                name=unit.name,
                uscc=unit.uscc,
                address=unit.address,
                contact_name=unit.contact_name,
                industry=unit.industry,
            )
    return existing


def _ensure_accounts(plan: _Plan, unions: dict[str, Union]) -> None:
    existing = set(
        User.objects.filter(username__in=DEMO_USERNAMES).values_list("username", flat=True)
    )
    for account in demo_accounts(plan.unit_clerk_union_code):
        if account.username in existing:
            continue
        # The demo password is fixed by INTERFACES.md §1; real accounts always pass the policy.
        create_staff_user(
            acting_user=None,
            username=account.username,
            password=DEMO_PASSWORD,
            organisation=unions[account.organisation_code],
            roles=set(account.roles),
            full_name=account.full_name,
            skip_password_policy=True,
        )


def _allocate(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` by ``weights`` with the largest-remainder method (sums exactly)."""
    whole = sum(weights)
    raw = [total * w / whole for w in weights]
    counts = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _member_rows(
    plan: _Plan, units: dict[str, Unit], total: int, people: _People
) -> list[tuple[str, list[tuple[MemberInput, _Person]]]]:
    """Rows per enrolling union code: (MemberInput, person) in a deterministic order."""
    rng = people.rng
    enrolling = [s for s in plan.unions if s.kind == UnionKind.GRASSROOTS]
    federation = next(s for s in plan.unions if s.kind == UnionKind.FEDERATION)
    riders = round(total * FEDERATION_SHARE)
    slots: list[tuple[_UnionSpec, _UnitSpec | None]] = [(s, u) for s in enrolling for u in s.units]
    weights = [rng.uniform(0.3, 3.0) for _ in slots]
    counts = _allocate(total - riders, weights)
    by_union: dict[str, list[tuple[MemberInput, _Person]]] = {}
    for (spec, unit_spec), count in [
        *zip(slots, counts, strict=True),
        ((federation, None), riders),
    ]:
        rows = by_union.setdefault(spec.code, [])
        for _ in range(count):
            person = people.member(spec.birth_regions)
            if unit_spec is None:
                employment = EmploymentType.NEW_EMPLOYMENT
            else:
                draw = rng.random()
                if draw < unit_spec.established_share:
                    employment = EmploymentType.ESTABLISHED
                elif draw < unit_spec.established_share + 0.1:
                    employment = EmploymentType.DISPATCHED
                else:
                    employment = EmploymentType.CONTRACT
            phone = people.phone() if rng.random() < 0.95 else ""
            account, bank = people.bank_account() if rng.random() < 0.85 else ("", "")
            rows.append(
                (
                    MemberInput(
                        name=person.name,
                        id_number=person.id_number,
                        employment_type=employment,
                        retirement_category=person.category,
                        phone=phone,
                        bank_account=account,
                        bank_name=bank,
                        unit_id=units[unit_spec.uscc].pk if unit_spec else None,
                    ),
                    person,
                )
            )
    return list(by_union.items())


def _family_of(people: _People, person: _Person) -> tuple[str, str, str]:
    """(name, id_number, relation) of a plausible spouse, child or parent."""
    rng = people.rng
    region = person.id_number[:6]
    surname = person.name[0]
    relation = rng.choice(
        (FamilyRelation.SPOUSE, FamilyRelation.SPOUSE, FamilyRelation.CHILD, FamilyRelation.PARENT)
    )
    if relation == FamilyRelation.CHILD and person.birth.year > 2000:
        relation = FamilyRelation.SPOUSE
    if relation == FamilyRelation.SPOUSE:
        male = not person.male
        birth = person.birth + timedelta(days=rng.randint(-1500, 1500))
        name = people.names.person(male)
    elif relation == FamilyRelation.CHILD:
        male = rng.random() < 0.5
        birth = min(
            person.birth + timedelta(days=rng.randint(22 * 365, 36 * 365)), date(2025, 12, 31)
        )
        name = people.names.person(male, surname if person.male else None)
    else:
        male = rng.random() < 0.5
        birth = person.birth - timedelta(days=rng.randint(22 * 365, 32 * 365))
        name = people.names.person(male, surname if male else None)
    return name, people.id_number(region, birth, male), relation


def _hardship_period(rng: random.Random) -> tuple[date, date | None]:
    draw = rng.random()
    if draw < 0.6:
        return date(PLAN_YEAR, 1, 1), date(PLAN_YEAR, 12, 31)
    if draw < 0.9:  # identified during the year (R4: status as of the admission date)
        start = date(PLAN_YEAR, 3, 1) + timedelta(days=rng.randint(0, 200))
        return start, date(PLAN_YEAR, 12, 31)
    return date(PLAN_YEAR - 1, 7, 1), None


def _build_members(
    plan: _Plan, unions: dict[str, Union], units: dict[str, Unit], total: int, rng: random.Random
) -> None:
    province = unions[PROVINCE_REGION]
    if Member.objects.filter(subtree_q(province.path, "union_path")).exists():
        return  # the demo members exist already (they are only ever written all together)
    people = _People(rng, _Names(rng))
    per_union = _member_rows(plan, units, total, people)
    created: list[tuple[Member, _Person, str]] = []
    cities = dict(CITIES)
    city_of_union = {s.code: cities[s.region_code[:4] + "00"] for s in plan.unions[1:]}
    for code, rows in per_union:
        if not rows:
            continue
        result = bulk_create_members(
            acting_user=None, union=unions[code], rows=[r for r, _ in rows]
        )
        created.extend((m, p, code) for m, (_, p) in zip(result.created, rows, strict=True))
    # Hardship (~5%), family members (~10%), consents (~90%): fixed draws per member, in order.
    consenting: list[Member] = []
    for member, person, code in created:
        if rng.random() < 0.05:
            start, end = _hardship_period(rng)
            source = (
                HardshipSource.CIVIL_AFFAIRS if rng.random() < 0.6 else HardshipSource.UNION_FILE
            )
            place = city_of_union[code]
            evidence = (
                f"{place}民政局低收入人口动态监测名单（{start.year}年第{rng.randint(1, 4)}批）"
                if source == HardshipSource.CIVIL_AFFAIRS
                else f"工会困难职工档案（档案号 KN{start.year}{rng.randint(1, 9999):04d}）"
            )
            record_hardship(
                acting_user=None,
                member=member,
                source=source,
                valid_from=start,
                valid_to=end,
                evidence=evidence,
            )
        if rng.random() < 0.10:
            name, number, relation = _family_of(people, person)
            add_family_member(
                acting_user=None, member=member, name=name, id_number=number, relation=relation
            )
        if rng.random() < 0.90:
            consenting.append(member)
    bulk_grant_consents(acting_user=None, members=consenting)


def build_demo(members: int = 5000) -> None:
    """Create (or complete) the demo province. Safe to run again: nothing is duplicated."""
    rng = random.Random(SEED)
    plan = _plan(rng)
    token = current_request.set(RequestInfo(channel="cli"))
    try:
        with transaction.atomic():
            unions = _ensure_unions(plan)
            units = _ensure_units(plan, unions)
            _ensure_accounts(plan, unions)
            _build_members(plan, unions, units, members, random.Random(SEED + 1))
        if members:
            # Plan, receipt ranges, splits, enrollments, invoices, payments: its services open
            # their own transactions, so it runs after the block above.
            from huzhu.demo_funding import build_demo_funding

            build_demo_funding()
    finally:
        current_request.reset(token)


# --- the account table -----------------------------------------------------------------------
def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    rows = list(rows)
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(_pad(c, w) for c, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(o.rstrip() for o in out)


def print_accounts() -> None:
    users = {
        u.username: u
        for u in User.objects.filter(username__in=DEMO_USERNAMES).select_related("organisation")
    }
    rows = []
    for username in DEMO_USERNAMES:
        user = users.get(username)
        if user is None:
            continue
        organisation = user.organisation.name if user.organisation else "—"
        codes = user.role_codes()
        roles = "、".join(r.label for r in Role if r.value in codes)
        rows.append((username, organisation, roles))
    member_count = Member.objects.count()
    print()
    print("职工互助保障平台 · 演示模式（数据均为虚构，身份证号码等仅格式有效）")
    print(f"访问地址：{DEMO_URL}")
    print(f"演示账号（密码均为 {DEMO_PASSWORD}，演示模式下不需要动态口令）：")
    print(_table(("账号", "所属组织", "角色"), rows))
    print(
        f"演示数据：{Union.objects.count()} 个工会组织，{Unit.objects.count()} 个单位，"
        f"{member_count} 名职工"
    )
    print()
