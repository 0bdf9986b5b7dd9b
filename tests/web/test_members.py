"""Member pages: masked everywhere, 「查看明文」 with a reason (audited, per role), search by name
or ID number (never echoed), keyset pages without COUNT, records, forms with Chinese errors, 404s
outside the scope."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from huzhu.core.ids import mask_id_number
from huzhu.core.models import AuditEvent
from huzhu.members.models import Consent, FamilyMember, HardshipRecord, Member
from huzhu.members.services import grant_consent, record_hardship
from tests import factories

pytestmark = pytest.mark.django_db

PHONE = "13812345678"
ACCOUNT = "6222021234567890123"


@pytest.fixture
def clerk(tree: factories.Tree):
    return factories.staff(tree.county_a1, "clerk", username="county_clerk")


@pytest.fixture
def number() -> str:
    return factories.id_number(date(1980, 5, 17))


@pytest.fixture
def member(tree: factories.Tree, number: str) -> Member:
    return factories.member(
        tree.grassroots_1,
        tree.unit_1,
        name="张伟",
        number=number,
        phone=PHONE,
        bank_account=ACCOUNT,
    )


@pytest.fixture
def other_county_member(tree: factories.Tree) -> Member:
    return factories.member(tree.grassroots_3, tree.unit_3, name="王芳", male=False)


def assert_masked_only(response, number: str) -> None:
    html = response.content.decode()
    assert number not in html
    assert PHONE not in html
    assert ACCOUNT not in html


# --- list and search ---------------------------------------------------------------------------
def test_list_shows_masked_values_only(tree, clerk, member, number, login) -> None:
    response = login(clerk).get("/members/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "张伟" in html and mask_id_number(number) in html and "138****5678" in html
    assert_masked_only(response, number)


def test_list_is_scoped(tree, clerk, member, other_county_member, login) -> None:
    factories.member(tree.grassroots_2, tree.unit_2, name="赵敏")  # sibling county
    html = login(clerk).get("/members/").content.decode()
    assert "张伟" in html and "王芳" not in html and "赵敏" not in html


def test_search_by_name_prefix(tree, clerk, member, login) -> None:
    factories.member(tree.grassroots_1, tree.unit_1, name="李娜", male=False)
    factories.member(tree.grassroots_1, tree.unit_1, name="小张伟")
    client = login(clerk)
    response = client.post("/members/", {"q": "张"})
    assert response.status_code == 302 and response["Location"] == "/members/?q=%E5%BC%A0"
    rows = client.get(response["Location"]).context["page"].rows
    assert [m.name for m in rows] == ["张伟"]


def test_search_by_id_number_never_echoes_it(tree, clerk, member, number, login) -> None:
    client = login(clerk)
    response = client.post("/members/", {"q": number.lower() if "X" in number else number})
    location = response["Location"]
    assert response.status_code == 302 and number not in location
    assert list(parse_qs(urlparse(location).query)) == ["idx"]
    page = client.get(location)
    assert [m.pk for m in page.context["page"].rows] == [member.pk]
    assert "按身份证号码精确查找" in page.content.decode()
    assert_masked_only(page, number)
    # A typed-in URL with the number is turned into the same address.
    assert client.get("/members/", {"q": number})["Location"] == location


def test_search_by_id_number_of_another_county_finds_nothing(
    tree, clerk, other_county_member, login
) -> None:
    client = login(clerk)
    number = str(Member.objects.get(pk=other_county_member.pk).id_number_enc)
    page = client.get(client.post("/members/", {"q": number})["Location"])
    assert page.context["page"].rows == []
    assert "您的管辖范围内没有该身份证号码的职工" in page.content.decode()
    assert client.get("/members/", {"idx": "not-an-index"}).context["page"].rows == []


def test_filters(tree, clerk, member, login) -> None:
    unit = factories.unit(tree.grassroots_1, "第二单位")
    rider = factories.member(
        tree.grassroots_1, unit, name="骑手甲", employment_type="new_employment"
    )
    record_hardship(
        acting_user=None,
        member=rider,
        source="civil_affairs",
        valid_from=date(2024, 1, 1),
        valid_to=None,
    )
    client = login(clerk)

    def names(**params: str | int) -> list[str]:
        return [m.name for m in client.get("/members/", params).context["page"].rows]

    assert names(unit=unit.pk) == ["骑手甲"]
    assert names(unit=tree.unit_1.pk) == ["张伟"]
    assert names(unit=tree.unit_3.pk) == []  # another county's unit: nothing
    assert names(hardship="1") == ["骑手甲"]
    assert names(hardship="0") == ["张伟"]
    assert names(employment_type="new_employment") == ["骑手甲"]
    assert names(employment_type="contract") == ["张伟"]
    assert names(union=tree.grassroots_1.pk) == ["骑手甲", "张伟"]
    assert client.get("/members/", {"union": tree.grassroots_3.pk}).status_code == 404
    redirect = client.post("/members/", {"q": "", "hardship": "1", "unit": str(unit.pk)})
    assert parse_qs(urlparse(redirect["Location"]).query) == {
        "unit": [str(unit.pk)],
        "hardship": ["1"],
    }


def test_keyset_pages_without_count_and_without_query_per_row(tree, clerk, login) -> None:
    created = [
        factories.member(tree.grassroots_1, tree.unit_1, name=f"职工{i:02d}") for i in range(25)
    ]
    client = login(clerk)
    client.get("/members/")
    with CaptureQueriesContext(connection) as queries:
        first = client.get("/members/")
    sql = [q["sql"].upper() for q in queries.captured_queries]
    assert not any("COUNT(" in s for s in sql)
    page = first.context["page"]
    assert [m.pk for m in page.rows] == [m.pk for m in reversed(created)][:20]
    assert first.context["prev_url"] is None
    assert first.context["next_url"] == f"?after={created[5].pk}"
    second = client.get("/members/" + first.context["next_url"])
    assert [m.name for m in second.context["page"].rows] == [
        f"职工{i:02d}" for i in range(4, -1, -1)
    ]
    assert second.context["next_url"] is None
    back = client.get("/members/" + second.context["prev_url"])
    assert [m.pk for m in back.context["page"].rows] == [m.pk for m in page.rows]
    # The number of queries does not depend on the number of rows shown: a continued page adds
    # only the cursor's lookup and the continuation into earlier organisations (page_members).
    with CaptureQueriesContext(connection) as fewer:
        client.get("/members/" + first.context["next_url"])
    assert len(fewer) <= len(queries) + 2


# --- detail and 查看明文 -------------------------------------------------------------------------
def test_detail_is_masked_with_reveal_actions(tree, clerk, member, number, login) -> None:
    response = login(clerk).get(f"/members/{member.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert mask_id_number(number) in html and "138****5678" in html and "**** 0123" in html
    assert_masked_only(response, number)
    for field in ("id_number", "phone", "bank_account"):
        assert f'hx-get="/members/{member.pk}/reveal/{field}/"' in html
    assert "芙蓉某公司" in html and "未授权医保数据" in html


@pytest.mark.parametrize(
    ("role", "fields"),
    [
        ("clerk", {"id_number", "phone", "bank_account"}),
        ("reviewer", {"id_number", "phone"}),
        ("finance", {"id_number", "bank_account"}),
        ("auditor", set()),
    ],
)
def test_reveal_actions_follow_the_field_matrix(
    tree, member, number, login, role: str, fields: set[str]
) -> None:
    client = login(factories.staff(tree.county_a1, role))
    response = client.get(f"/members/{member.pk}/")
    assert_masked_only(response, number)
    html = response.content.decode()
    for field in ("id_number", "phone", "bank_account"):
        shown = f"/members/{member.pk}/reveal/{field}/" in html
        assert shown is (field in fields)
        status = client.get(f"/members/{member.pk}/reveal/{field}/").status_code
        assert status == (200 if field in fields else 404)
        post = client.post(f"/members/{member.pk}/reveal/{field}/", {"reason": "核对身份信息"})
        assert post.status_code == (200 if field in fields else 404)
        plain = {"id_number": number, "phone": PHONE, "bank_account": ACCOUNT}[field]
        assert (plain in post.content.decode()) is (field in fields)
    unmasked = AuditEvent.objects.filter(event="member.unmask")
    assert {e.detail["field"] for e in unmasked} == fields


def test_reveal_requires_a_reason_and_is_audited(tree, clerk, member, number, login) -> None:
    client = login(clerk)
    form = client.get(f"/members/{member.pk}/reveal/id_number/", HTTP_HX_REQUEST="true")
    assert form.status_code == 200 and "明文的原因（至少4个字）" in form.content.decode()
    assert "<html" not in form.content.decode()
    short = client.post(
        f"/members/{member.pk}/reveal/id_number/", {"reason": "核对"}, HTTP_HX_REQUEST="true"
    )
    assert short.status_code == 422
    assert "请填写查看原因（至少4个字）" in short.content.decode()
    assert number not in short.content.decode()
    assert not AuditEvent.objects.filter(event="member.unmask").exists()
    shown = client.post(
        f"/members/{member.pk}/reveal/id_number/",
        {"reason": "核对理赔申请人身份"},
        HTTP_HX_REQUEST="true",
    )
    assert shown.status_code == 200
    assert number in shown.content.decode()
    assert "no-store" in shown["Cache-Control"]
    event = AuditEvent.objects.get(event="member.unmask")
    assert event.object_id == str(member.pk) and event.actor_username == "county_clerk"
    assert event.detail == {"field": "id_number", "reason": "核对理赔申请人身份"}
    assert number not in str(event.detail)
    # Shown once: the detail page is masked again.
    assert_masked_only(client.get(f"/members/{member.pk}/"), number)
    cancel = client.get(f"/members/{member.pk}/reveal/id_number/?cancel=1", HTTP_HX_REQUEST="true")
    assert (
        mask_id_number(number) in cancel.content.decode() and number not in cancel.content.decode()
    )


def test_reveal_without_htmx_is_a_full_page(tree, clerk, member, login) -> None:
    client = login(clerk)
    page = client.get(f"/members/{member.pk}/reveal/phone/")
    assert "<html" in page.content.decode() and "查看手机号码明文" in page.content.decode()
    shown = client.post(f"/members/{member.pk}/reveal/phone/", {"reason": "联系职工本人"})
    assert PHONE in shown.content.decode() and "返回职工详情" in shown.content.decode()


def test_unknown_or_empty_fields_cannot_be_revealed(tree, clerk, login) -> None:
    bare = factories.member(tree.grassroots_1, tree.unit_1, name="无手机")
    client = login(clerk)
    assert client.get(f"/members/{bare.pk}/reveal/phone/").status_code == 404
    assert client.get(f"/members/{bare.pk}/reveal/name/").status_code == 404


# --- records on the detail page --------------------------------------------------------------
def test_add_hardship_record_with_htmx(tree, clerk, member, login) -> None:
    client = login(clerk)
    url = f"/members/{member.pk}/hardship/"
    bad = client.post(
        url,
        {"source": "", "valid_from": "2026-02-30", "valid_to": ""},
        HTTP_HX_REQUEST="true",
    )
    assert bad.status_code == 422
    text = bad.content.decode()
    assert "请选择认定来源" in text and "日期格式应为“年-月-日”" in text
    assert 'id="hardship"' in text and "<html" not in text
    reversed_dates = client.post(
        url,
        {"source": "civil_affairs", "valid_from": "2026-03-01", "valid_to": "2026-01-01"},
        HTTP_HX_REQUEST="true",
    )
    assert "截止日期不能早于起始日期" in reversed_dates.content.decode()
    assert not HardshipRecord.objects.exists()
    ok = client.post(
        url,
        {"source": "civil_affairs", "valid_from": "2025-01-01", "evidence": "民政名单2025-01批"},
        HTTP_HX_REQUEST="true",
    )
    assert ok.status_code == 200
    text = ok.content.decode()
    assert (
        "已登记困难职工认定" in text
        and "民政名单2025-01批" in text
        and "截至今日为困难职工" in text
    )
    record = HardshipRecord.objects.get(member=member)
    assert record.recorded_by_id == clerk.pk and record.valid_to is None


def test_add_hardship_record_without_htmx(tree, clerk, member, login) -> None:
    client = login(clerk)
    url = f"/members/{member.pk}/hardship/"
    bad = client.post(url, {"source": "union_file", "valid_from": ""})
    assert bad.status_code == 422 and "请填写日期" in bad.content.decode()
    assert "<html" in bad.content.decode()
    ok = client.post(url, {"source": "union_file", "valid_from": "2025-06-01"})
    assert ok.status_code == 302 and ok["Location"] == f"/members/{member.pk}/#hardship"
    assert "已登记困难职工认定" in client.get(ok["Location"]).content.decode()


def test_add_family_member(tree, clerk, member, login) -> None:
    client = login(clerk)
    url = f"/members/{member.pk}/family/"
    bad = client.post(
        url, {"name": "", "relation": "", "id_number": "43010219800517001"}, HTTP_HX_REQUEST="true"
    )
    assert bad.status_code == 422
    errors = bad.context["family_form"].errors
    assert errors["name"] == ["姓名不能为空"]
    assert errors["relation"] == ["关系应为配偶、子女或父母"]
    assert errors["id_number"] == ["身份证号码应为18位，实际为17位"]
    spouse = factories.id_number(date(1982, 8, 1), male=False)
    ok = client.post(
        url, {"name": "王丽", "relation": "spouse", "id_number": spouse}, HTTP_HX_REQUEST="true"
    )
    text = ok.content.decode()
    assert ok.status_code == 200 and "王丽" in text and "配偶" in text
    assert mask_id_number(spouse) in text and spouse not in text
    assert FamilyMember.objects.filter(member=member).count() == 1
    assert spouse not in client.get(f"/members/{member.pk}/").content.decode()


def test_grant_and_withdraw_consent(tree, clerk, member, login) -> None:
    client = login(clerk)
    granted = client.post(
        f"/members/{member.pk}/consent/grant/",
        {"channel": "paper_via_union"},
        HTTP_HX_REQUEST="true",
    )
    assert granted.status_code == 200
    assert "授权有效" in granted.content.decode() and "撤回授权" in granted.content.decode()
    consent = Consent.objects.get(member=member)
    assert consent.active and consent.recorded_by_id == clerk.pk
    withdrawn = client.post(f"/members/{member.pk}/consent/withdraw/")
    assert withdrawn["Location"] == f"/members/{member.pk}/#consents"
    consent.refresh_from_db()
    assert not consent.active
    page = client.get(f"/members/{member.pk}/").content.decode()
    assert "已撤回医保数据授权" in page and "未授权医保数据" in page
    assert AuditEvent.objects.filter(event="consent.withdraw").count() == 1


def test_consent_badge_on_detail(tree, clerk, member, login) -> None:
    grant_consent(acting_user=None, member=member)
    assert "已授权医保数据" in login(clerk).get(f"/members/{member.pk}/").content.decode()


def test_read_only_role_cannot_write(tree, member, login) -> None:
    auditor = login(factories.staff(tree.county_a1, "auditor"))
    html = auditor.get(f"/members/{member.pk}/").content.decode()
    assert "登记困难职工认定" not in html and "编辑" not in html
    for url, data in (
        (f"/members/{member.pk}/hardship/", {"source": "union_file", "valid_from": "2025-01-01"}),
        (f"/members/{member.pk}/consent/grant/", {"channel": "paper_via_union"}),
        (f"/members/{member.pk}/edit/", {}),
        ("/members/new/", {}),
    ):
        assert auditor.post(url, data).status_code == 404
    assert not HardshipRecord.objects.exists() and not Consent.objects.exists()


def test_another_countys_member_is_404_everywhere(tree, clerk, other_county_member, login) -> None:
    client = login(clerk)
    pk = other_county_member.pk
    for url in (
        f"/members/{pk}/",
        f"/members/{pk}/edit/",
        f"/members/{pk}/reveal/id_number/",
    ):
        response = client.get(url)
        assert response.status_code == 404
        assert "王芳" not in response.content.decode()
    for url, data in (
        (f"/members/{pk}/hardship/", {"source": "union_file", "valid_from": "2025-01-01"}),
        (f"/members/{pk}/family/", {"name": "x", "relation": "child", "id_number": "x"}),
        (f"/members/{pk}/consent/grant/", {"channel": "paper_via_union"}),
        (f"/members/{pk}/consent/withdraw/", {}),
        (f"/members/{pk}/reveal/id_number/", {"reason": "核对身份信息"}),
        (f"/members/{pk}/edit/", {"name": "改名"}),
    ):
        assert client.post(url, data).status_code == 404
    assert not AuditEvent.objects.filter(event="member.unmask").exists()
    assert not HardshipRecord.objects.exists()


# --- create and edit -----------------------------------------------------------------------------
def test_create_member(tree, clerk, login) -> None:
    client = login(clerk)
    page = client.get("/members/new/", {"unit": tree.unit_1.pk})
    form = page.context["form"]
    assert form["union"].value() == str(tree.grassroots_1.pk)
    assert form["unit"].value() == str(tree.unit_1.pk)
    number = factories.id_number(date(1990, 1, 2), male=False)
    response = client.post(
        "/members/new/",
        {
            "union": tree.grassroots_1.pk,
            "unit": tree.unit_1.pk,
            "name": "陈静",
            "id_number": number,
            "employment_type": "contract",
            "retirement_category": "female55",
            "phone": PHONE,
            "bank_account": "",
        },
    )
    member = Member.objects.get(name="陈静")
    assert response.status_code == 302 and response["Location"] == f"/members/{member.pk}/"
    assert member.unit_id == tree.unit_1.pk and member.retirement_category == "female55"
    assert AuditEvent.objects.filter(event="member.create", object_id=str(member.pk)).exists()


def test_create_member_shows_every_error_beside_its_field(tree, clerk, login) -> None:
    female = factories.id_number(date(1991, 3, 3), male=False)
    response = login(clerk).post(
        "/members/new/",
        {
            "union": tree.grassroots_1.pk,
            "unit": "",
            "name": "",
            "id_number": female,
            "employment_type": "",
            "retirement_category": "",
            "phone": "12345",
            "bank_account": "62220",
        },
    )
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert errors["name"] == ["姓名不能为空"]
    assert errors["employment_type"] == ["用工形式应为在编、合同、劳务派遣或新就业形态"]
    assert errors["retirement_category"] == [
        "女职工须填写退休类别（女50 或 女55），身份证号码无法区分"
    ]
    assert errors["phone"] == ["手机号码应为11位，以1开头"]
    assert errors["bank_account"] == ["银行账号应为12至30位数字"]
    assert errors["unit"] == ["请选择所在单位（仅工会联合会可直接登记无单位的新就业形态劳动者）"]
    html = response.content.decode()
    assert 'class="invalid-feedback d-block">姓名不能为空<' in html
    assert not Member.objects.exists()


def test_create_member_rejects_a_unit_or_union_outside_the_scope(tree, clerk, login) -> None:
    client = login(clerk)
    data = {
        "name": "越权",
        "id_number": factories.id_number(),
        "employment_type": "contract",
    }
    other_unit = client.post(
        "/members/new/", {**data, "union": tree.grassroots_1.pk, "unit": tree.unit_3.pk}
    )
    assert other_unit.context["form"].errors["unit"] == ["所选单位不存在或不属于该工会"]
    other_union = client.post(
        "/members/new/", {**data, "union": tree.grassroots_3.pk, "unit": tree.unit_3.pk}
    )
    assert other_union.context["form"].errors["union"] == ["该工会组织不存在或不在您的管辖范围内"]
    assert not Member.objects.exists()


def test_duplicate_id_number(tree, clerk, member, number, login, pii_guard) -> None:
    pii_guard.allow(number)  # the form shows back what this user just typed in, to correct it
    response = login(clerk).post(
        "/members/new/",
        {
            "union": tree.grassroots_1.pk,
            "unit": tree.unit_1.pk,
            "name": "重复",
            "id_number": number,
            "employment_type": "contract",
        },
    )
    assert response.context["form"].errors["id_number"] == ["该身份证号码已登记为职工"]
    assert number in response.content.decode()  # only what this user just typed in
    assert Member.objects.count() == 1


def test_unit_field_follows_the_union(tree, clerk, login) -> None:
    federation = factories.union(tree.county_a1, "芙蓉区快递行业工会联合会", "federation")
    client = login(clerk)
    units = client.get("/members/unit-field/", {"union": tree.grassroots_1.pk}).content.decode()
    assert "芙蓉某公司" in units and "<select" in units
    fed = client.get("/members/unit-field/", {"union": federation.pk}).content.decode()
    assert "（无单位：新就业形态劳动者）" in fed
    other = client.get("/members/unit-field/", {"union": tree.grassroots_3.pk}).content.decode()
    assert "荷塘某公司" not in other and "请先选择参保工会" in other


def test_federation_enrols_without_unit(tree, clerk, login) -> None:
    federation = factories.union(tree.county_a1, "芙蓉区外卖骑手工会联合会", "federation")
    response = login(clerk).post(
        "/members/new/",
        {
            "union": federation.pk,
            "unit": "",
            "name": "骑手乙",
            "id_number": factories.id_number(),
            "employment_type": "new_employment",
        },
    )
    assert response.status_code == 302
    member = Member.objects.get(name="骑手乙")
    assert member.union_id == federation.pk and member.unit_id is None


def test_edit_member_keeps_blank_sensitive_fields(tree, clerk, member, number, login) -> None:
    client = login(clerk)
    page = client.get(f"/members/{member.pk}/edit/")
    assert_masked_only(page, number)
    html = page.content.decode()
    assert mask_id_number(number) in html and "不修改请留空" in html
    response = client.post(
        f"/members/{member.pk}/edit/",
        {
            "name": "张伟（改）",
            "id_number": "",
            "phone": "",
            "bank_account": "",
            "employment_type": "established",
            "retirement_category": "",
            "unit": tree.unit_1.pk,
        },
    )
    assert response.status_code == 302
    fresh = Member.objects.get(pk=member.pk)
    assert fresh.name == "张伟（改）" and fresh.employment_type == "established"
    assert fresh.id_number_enc == number and fresh.phone_enc == PHONE
    assert fresh.bank_account_enc == ACCOUNT
    event = AuditEvent.objects.filter(event="member.update").latest("seq")
    assert event.detail == {"changed": ["employment_type", "name"]}


def test_edit_member_changes_the_phone_and_reports_errors(tree, clerk, member, login) -> None:
    client = login(clerk)
    bad = client.post(
        f"/members/{member.pk}/edit/",
        {"name": "", "phone": "1391111", "employment_type": "contract", "unit": tree.unit_1.pk},
    )
    assert bad.status_code == 422
    errors = bad.context["form"].errors
    assert errors["name"] == ["姓名不能为空"] and errors["phone"] == ["手机号码应为11位，以1开头"]
    assert Member.objects.get(pk=member.pk).name == "张伟"
    ok = client.post(
        f"/members/{member.pk}/edit/",
        {
            "name": "张伟",
            "phone": "13900001111",
            "employment_type": "contract",
            "unit": tree.unit_1.pk,
        },
    )
    assert ok.status_code == 302
    assert Member.objects.get(pk=member.pk).phone_masked == "139****1111"


def test_pages_are_not_cached(tree, clerk, member, login) -> None:
    client: Client = login(clerk)
    for url in ("/members/", f"/members/{member.pk}/", f"/members/{member.pk}/edit/"):
        assert "no-store" in client.get(url)["Cache-Control"]
