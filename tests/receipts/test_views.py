"""The receipt screens: scope (S5), filters and keyset pages, downloads, void/reissue, ranges,
and the public verification page (nothing personal, rate-limited)."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from huzhu.contributions.receipt_models import Receipt, ReceiptRange, ReceiptStatus
from huzhu.contributions.receipt_services import ReceiptEvent, void_receipt
from huzhu.contributions.receipt_xml import verify_receipt_xml
from huzhu.core.models import AuditEvent
from tests import factories
from tests.receipts.conftest import ReceiptWorld, code_for, login

LIST = "/receipts/"


def detail_url(receipt: Receipt) -> str:
    return reverse("contributions:receipt_detail", args=[receipt.pk])


def test_urls_are_where_the_brief_says() -> None:
    assert reverse("contributions:receipt_list") == "/receipts/"
    assert reverse("contributions:verify") == "/receipts/verify/"
    assert reverse("contributions:public_key") == "/receipts/public-key"
    assert reverse("contributions:range_list") == "/receipts/ranges/"


def test_anonymous_staff_pages_go_to_login(world: ReceiptWorld, client: Client) -> None:
    receipt = world.issue("anon")
    for url in (LIST, detail_url(receipt), f"{detail_url(receipt)}pdf", "/receipts/ranges/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_list_shows_receipts_in_scope_only(world: ReceiptWorld) -> None:
    mine = world.issue("a", unit=world.tree.unit_1)
    sibling = world.issue("b", unit=world.tree.unit_2)
    finance = login(world.finance)
    page = finance.get(LIST).content.decode()
    assert mine.number_text in page and sibling.number_text in page
    assert "芙蓉某公司" in page and "有效" in page
    # The grassroots union's clerk sees the receipt its unit paid, not the sibling's.
    clerk = login(factories.staff(world.tree.grassroots_1, "clerk"))
    page = clerk.get(LIST).content.decode()
    assert mine.number_text in page
    assert f"{sibling.code}-{sibling.number_text}" not in page
    assert clerk.get(detail_url(mine)).status_code == 200
    assert clerk.get(detail_url(sibling)).status_code == 404
    # Another city's staff see nothing of it.
    other = login(factories.staff(world.tree.city_b, "finance", "auditor"))
    assert "没有符合条件的票据" in other.get(LIST).content.decode()
    for url in (
        detail_url(mine),
        f"{detail_url(mine)}pdf",
        f"{detail_url(mine)}xml",
    ):
        assert other.get(url).status_code == 404


def test_roles_without_receipt_view_get_404(world: ReceiptWorld) -> None:
    receipt = world.issue("roles")
    reviewer = login(factories.staff(world.tree.city_a, "reviewer"))
    assert reviewer.get(LIST).status_code == 404
    assert reviewer.get(detail_url(receipt)).status_code == 404
    auditor = login(factories.staff(world.tree.province, "auditor"))
    response = auditor.get(detail_url(receipt))
    assert response.status_code == 200
    assert "作废票据" not in response.content.decode()


def test_filters(world: ReceiptWorld) -> None:
    first = world.issue("f1", unit=world.tree.unit_1)
    second = world.issue("f2", unit=world.tree.unit_2)
    void_receipt(acting_user=world.finance, receipt=second, reason="测试")
    client = login(world.finance)

    def numbers(query: dict[str, Any]) -> set[str]:
        text = client.get(LIST, query).content.decode()
        return {r.number_text for r in (first, second) if f"-{r.number_text}<" in text}

    assert numbers({}) == {first.number_text, second.number_text}
    assert numbers({"payer": "天心"}) == {second.number_text}
    assert numbers({"payer": world.tree.unit_1.uscc}) == {first.number_text}
    assert numbers({"status": ReceiptStatus.VOIDED}) == {second.number_text}
    assert numbers({"status": ReceiptStatus.ISSUED}) == {first.number_text}
    assert numbers({"number": "2"}) == {second.number_text}
    today = world.today.isoformat()
    assert numbers({"date_from": today, "date_to": today}) == {
        first.number_text,
        second.number_text,
    }
    response = client.get(LIST, {"date_from": "2026-12-31", "date_to": "2026-01-01"})
    assert "结束日期不能早于开始日期" in response.content.decode()


def test_keyset_pages_and_constant_queries(world: ReceiptWorld) -> None:
    receipts = [world.issue(f"page-{i}") for i in range(45)]
    client = login(world.finance)
    with CaptureQueriesContext(connection) as full_page:
        first = client.get(LIST)
    page = first.content.decode()
    assert receipts[-1].number_text in page and receipts[25].number_text in page
    assert receipts[24].number_text not in page
    next_url = first.context["next_url"]
    assert first.context["prev_url"] is None and next_url == f"?after={receipts[25].pk}"
    second = client.get(LIST + next_url)
    assert [r.pk for r in second.context["rows"]] == [r.pk for r in reversed(receipts[5:25])]
    third = client.get(LIST + second.context["next_url"])
    assert [r.pk for r in third.context["rows"]] == [r.pk for r in reversed(receipts[:5])]
    assert third.context["next_url"] is None
    back = client.get(LIST + third.context["prev_url"])
    assert [r.pk for r in back.context["rows"]] == [r.pk for r in second.context["rows"]]
    with CaptureQueriesContext(connection) as short_page:
        client.get(LIST + second.context["next_url"])
    # 20 rows cost what 5 rows cost: no query per row.
    assert len(full_page.captured_queries) == len(short_page.captured_queries)


def test_downloads_are_audited(world: ReceiptWorld) -> None:
    receipt = world.issue("dl")
    client = login(world.finance)
    pdf = client.get(f"{detail_url(receipt)}pdf")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == (
        f'attachment; filename="receipt-{receipt.code}-0000000001.pdf"'
    )
    assert pdf.content.startswith(b"%PDF-")
    xml = client.get(f"{detail_url(receipt)}xml")
    assert xml["Content-Type"] == "application/xml"
    assert verify_receipt_xml(xml.content)
    formats = list(
        AuditEvent.objects.filter(event=ReceiptEvent.DOWNLOADED, object_id=str(receipt.pk))
        .order_by("seq")
        .values_list("detail__format", flat=True)
    )
    assert formats == ["pdf", "xml"]
    assert pdf["Cache-Control"] == "no-store"


def test_void_and_reissue_from_the_detail_page(world: ReceiptWorld) -> None:
    receipt = world.issue("ui")
    client = login(world.finance)
    page = client.get(detail_url(receipt)).content.decode()
    assert "确认作废" in page and "确认换开" in page
    missing = client.post(reverse("contributions:receipt_void", args=[receipt.pk]), {"reason": ""})
    assert missing.status_code == 422
    assert "请填写作废原因" in missing.content.decode()
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.ISSUED
    reissued = client.post(
        reverse("contributions:receipt_reissue", args=[receipt.pk]),
        {"reason": "单位名称有误", "payer_name": "芙蓉某公司（新）", "payer_reference": ""},
    )
    new = Receipt.objects.get(reissue_of=receipt)
    assert reissued.status_code == 302 and reissued["Location"] == detail_url(new)
    page = client.get(detail_url(new)).content.decode()
    assert f"已换开新票据 {new.code}-{new.number_text}" in page
    assert "换开自已作废的票据" in page and "芙蓉某公司（新）" in page
    old_page = client.get(detail_url(receipt)).content.decode()
    assert "已作废" in old_page and "换开：单位名称有误" in old_page
    assert "确认换开" not in old_page and "确认作废" not in old_page
    voided = client.post(reverse("contributions:receipt_void", args=[new.pk]), {"reason": "退费"})
    assert voided.status_code == 302
    new.refresh_from_db()
    assert new.status == ReceiptStatus.VOIDED and new.void_reason == "退费"


def test_payer_side_staff_cannot_void(world: ReceiptWorld) -> None:
    receipt = world.issue("payer-side")
    grassroots_finance = login(factories.staff(world.tree.grassroots_1, "finance"))
    page = grassroots_finance.get(detail_url(receipt))
    assert page.status_code == 200 and "确认作废" not in page.content.decode()
    clerk = login(factories.staff(world.tree.city_a, "clerk"))
    audit_before = AuditEvent.objects.count()
    for name in ("contributions:receipt_void", "contributions:receipt_reissue"):
        response = grassroots_finance.post(reverse(name, args=[receipt.pk]), {"reason": "越权"})
        assert response.status_code == 404
    response = clerk.post(reverse("contributions:receipt_void", args=[receipt.pk]), {"reason": "x"})
    assert response.status_code == 404
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.ISSUED
    assert Receipt.objects.count() == 1
    assert AuditEvent.objects.count() == audit_before


def test_range_page_allocates_for_finance(world: ReceiptWorld) -> None:
    client = login(world.finance)
    page = client.get("/receipts/ranges/")
    text = page.content.decode()
    assert page.status_code == 200 and "登记新号段" in text
    assert "0000000001–0000001000" in text and "湘财票〔2026〕1号" in text
    year = world.today.year
    bad = client.post(
        "/receipts/ranges/",
        {
            "union": str(world.tree.county_a1.pk),
            "code": "123",
            "year": year,
            "first_number": "20",
            "last_number": "10",
        },
    )
    assert bad.status_code == 422
    body = bad.content.decode()
    assert "票据代码应为8位数字" in body and "终止号码不能小于起始号码" in body
    assert ReceiptRange.objects.count() == 1
    good = client.post(
        "/receipts/ranges/",
        {
            "union": str(world.tree.county_a1.pk),
            "code": code_for(year),
            "year": year,
            "first_number": "0000002001",
            "last_number": "0000003000",
            "platform_reference": "湘财票〔2026〕9号",
        },
    )
    assert good.status_code == 302
    created = ReceiptRange.objects.get(issuer=world.tree.county_a1)
    assert (created.first_number, created.last_number, created.allocated_by) == (
        2001,
        3000,
        world.finance,
    )
    # Grassroots unions are not offered as issuers, and another city's unions are not either.
    form_html = client.get("/receipts/ranges/").content.decode()
    assert "芙蓉区某公司工会" not in form_html and "株洲市总工会" not in form_html


def test_range_page_is_read_only_for_clerks(world: ReceiptWorld) -> None:
    clerk = login(factories.staff(world.tree.city_a, "clerk"))
    page = clerk.get("/receipts/ranges/").content.decode()
    assert "0000000001–0000001000" in page and "登记新号段" not in page
    response = clerk.post(
        "/receipts/ranges/",
        {
            "union": str(world.tree.city_a.pk),
            "code": code_for(world.today.year),
            "year": world.today.year,
            "first_number": "5001",
            "last_number": "6000",
        },
    )
    assert response.status_code == 404
    assert ReceiptRange.objects.count() == 1
    outsider = login(factories.staff(world.tree.city_b, "finance"))
    assert "0000000001–0000001000" not in outsider.get("/receipts/ranges/").content.decode()


# --- the public verification page ---------------------------------------------------------------
def _verify(client: Client, receipt: Receipt, **override: str) -> Any:
    query = {"code": receipt.code, "number": receipt.number_text, "check": receipt.check_code}
    query.update(override)
    return client.get("/receipts/verify/", query)


def test_verification_page_needs_no_login(client: Client) -> None:
    response = client.get("/receipts/verify/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "电子票据查验" in text and "校验码" in text and "查验结果" not in text


def test_valid_receipt_shows_amounts_issuer_date_and_nothing_personal(
    world: ReceiptWorld, client: Client, assert_no_pii: Any
) -> None:
    number = factories.id_number()
    member = factories.member(
        world.tree.grassroots_1, world.tree.unit_1, name="李秀英", number=number
    )
    from huzhu.contributions.receipt_models import PayerKind
    from huzhu.contributions.receipt_services import issue_receipt

    receipt = issue_receipt(
        acting_user=world.finance,
        issuer=world.issuer,
        payer_name=member.name,
        payer_kind=PayerKind.INDIVIDUAL,
        payer_reference=number,
        items=[("个人缴纳互助金", 3000), ("单位承担互助金", 9000)],
        total_fen=12000,
        issued_on=world.today,
        source_type="test.payment",
        source_id="public",
        payer=member,
    )
    response = _verify(client, receipt)
    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-verify-result="issued"' in text and "查验结果：有效" in text
    for shown in (
        "长沙市总工会",
        world.today.isoformat(),
        "¥120.00",
        "壹佰贰拾元整",
        "30.00",
        "90.00",
    ):
        assert shown in text, shown
    for hidden in ("李秀英", receipt.payer_reference, number, number[-4:] + "<", "cs_finance"):
        assert hidden not in text, hidden
    assert_no_pii(response)


def test_wrong_check_code_looks_like_an_unknown_number(world: ReceiptWorld, client: Client) -> None:
    receipt = world.issue("probe")
    wrong = "000000" if receipt.check_code != "000000" else "111111"
    for response in (
        _verify(client, receipt, check=wrong),
        _verify(client, receipt, number="0000000999"),
        _verify(client, receipt, code="43999926"),
    ):
        assert response.status_code == 200
        text = response.content.decode()
        assert 'data-verify-result="not_found"' in text and "查验结果：未找到" in text
        assert "长沙市总工会" not in text and "120.00" not in text
    lower = _verify(client, receipt, check=receipt.check_code.lower(), number="1")
    assert 'data-verify-result="issued"' in lower.content.decode()


def test_voided_receipt_is_reported_voided(world: ReceiptWorld, client: Client) -> None:
    receipt = world.issue("public-void")
    void_receipt(acting_user=world.finance, receipt=receipt, reason="张三的名字写错了")
    text = _verify(client, receipt).content.decode()
    assert 'data-verify-result="voided"' in text and "查验结果：已作废" in text
    assert "该票据已作废，不能作为有效缴费凭证" in text
    assert "张三" not in text


def test_malformed_input_is_explained(client: Client) -> None:
    response = client.get("/receipts/verify/", {"code": "12ab", "number": "x", "check": ""})
    assert response.status_code == 422
    text = response.content.decode()
    for message in ("票据代码为8位数字", "票据号码为10位数字", "请填写校验码"):
        assert message in text


def test_verification_is_rate_limited_per_ip(world: ReceiptWorld, settings: Any) -> None:
    settings.HUZHU_RECEIPT_VERIFY_PER_MINUTE = 5
    receipt = world.issue("limit")
    one = Client(REMOTE_ADDR="203.0.113.7")
    other = Client(REMOTE_ADDR="203.0.113.8")
    statuses = [_verify(one, receipt, check="AAAAAA").status_code for _ in range(5)]
    assert statuses == [200] * 5
    blocked = _verify(one, receipt)
    assert blocked.status_code == 429
    text = blocked.content.decode()
    assert "查验过于频繁" in text and "长沙市总工会" not in text
    assert _verify(other, receipt).status_code == 200
    # The bare form does not count.
    assert one.get("/receipts/verify/").status_code == 200


def test_qr_link_prefills_the_form(world: ReceiptWorld) -> None:
    receipt = world.issue("qr")
    client = login(world.finance)
    page = client.get(detail_url(receipt)).content.decode()
    link = (
        f"/receipts/verify/?code={receipt.code}&amp;number={receipt.number_text}"
        f"&amp;check={receipt.check_code}"
    )
    assert link in page
    public = Client().get(link.replace("&amp;", "&")).content.decode()
    assert f'value="{receipt.check_code}"' in public and "查验结果：有效" in public
