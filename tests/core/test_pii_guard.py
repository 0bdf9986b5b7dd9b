"""The S9 guard itself (tests/conftest.py): it must catch leaks, and stay quiet otherwise."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import Client
from django.urls import path

from tests import factories
from tests.conftest import REVEAL_HEADER, PiiGuard, PiiLeak, find_id_numbers

VALID_ID = "430102197503010033"
PHONE = "13812345678"
ACCOUNT = "6222021234567890128"


# A tiny URLconf for these tests (pytest.mark.urls): views that show a member's plain values.
def _leak(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"<td>{request.GET['v']}</td>")


def _reveal(request: HttpRequest) -> HttpResponse:
    response = JsonResponse({"value": request.GET["v"]})
    response[REVEAL_HEADER] = "1"
    return response


def _masked(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<td>430***********0033</td><td>138****5678</td><td>**** 0128</td>")


def _redirect(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(status=302)
    response["Location"] = f"/members/?q={request.GET['v']}"
    return response


urlpatterns = [
    path("leak/", _leak),
    path("reveal/", _reveal),
    path("masked/", _masked),
    path("redirect/", _redirect),
]


def test_generic_scan_finds_only_valid_id_numbers() -> None:
    text = (
        f"a {VALID_ID} b 11010519491231002x c 430102197503010034 d 411728199802290058 "
        "e 1430102197503010033 f 91110000600037341L"
    )
    assert find_id_numbers(text) == [VALID_ID, "11010519491231002x"]


def test_check_text_raises_on_tracked_values_and_masks_them_in_the_message() -> None:
    guard = PiiGuard()
    guard.track("members.Member.phone_enc", PHONE)
    guard.track("members.Member.bank_account_enc", ACCOUNT)
    guard.track("claims.Claim.diagnosis_enc", "J18.9 肺炎")  # not an S9 value: never searched
    assert guard.values == {PHONE: "mobile number", ACCOUNT: "bank account"}
    with pytest.raises(PiiLeak) as caught:
        guard.check_text(f"tel {PHONE}; card {ACCOUNT}; J18.9 肺炎", "x", generic=False)
    message = str(caught.value)
    assert "138****5678" in message and "****0128" in message
    assert PHONE not in message and ACCOUNT not in message
    guard.check_text("tel 138****5678; card **** 0128", "x", generic=False)


def test_allow_exempts_a_value() -> None:
    guard = PiiGuard()
    guard.track("members.Member.id_number_enc", VALID_ID)
    guard.allow(VALID_ID)
    guard.check_text(f"echo {VALID_ID}", "x")


def test_lowercase_x_variant_is_tracked() -> None:
    guard = PiiGuard()
    guard.track("members.FamilyMember.id_number_enc", "11010519491231002X")
    with pytest.raises(PiiLeak):
        guard.check_text("11010519491231002x", "x", generic=False)


@pytest.mark.django_db
def test_values_stored_through_field_encryption_are_tracked(pii_guard: PiiGuard) -> None:
    tree = factories.tree()
    member = factories.member(tree.grassroots_1, tree.unit_1, phone=PHONE, bank_account=ACCOUNT)
    number = member.id_number_enc
    assert pii_guard.values[number] == "ID number"
    assert pii_guard.values[PHONE] == "mobile number"
    assert pii_guard.values[ACCOUNT] == "bank account"


@pytest.mark.urls(__name__)
def test_client_response_with_a_tracked_value_raises(pii_guard: PiiGuard, client: Client) -> None:
    pii_guard.track("members.Member.id_number_enc", VALID_ID)
    with pytest.raises(PiiLeak, match="the response to GET /leak/"):
        client.get("/leak/", {"v": VALID_ID})
    with pytest.raises(PiiLeak, match="ID number"):
        client.get("/redirect/", {"v": VALID_ID})  # a Location header counts too


@pytest.mark.urls(__name__)
def test_reveal_header_and_masked_pages_pass(pii_guard: PiiGuard, client: Client) -> None:
    pii_guard.track("members.Member.id_number_enc", VALID_ID)
    pii_guard.track("members.Member.phone_enc", PHONE)
    assert client.get("/reveal/", {"v": VALID_ID}).json() == {"value": VALID_ID}
    assert client.get("/masked/").status_code == 200
    assert client.get("/leak/", {"v": "some text"}).status_code == 200
    assert pii_guard.responses_checked == 2  # the reveal response is not checked


def test_zipped_spreadsheet_parts_are_checked(assert_no_pii: Any, pii_guard: PiiGuard) -> None:
    import io
    import zipfile

    pii_guard.track("members.Member.bank_account_enc", ACCOUNT)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", f"<si><t>{ACCOUNT}</t></si>")
    response = HttpResponse(buffer.getvalue(), content_type="application/vnd.ms-excel")
    with pytest.raises(PiiLeak, match="bank account"):
        assert_no_pii(response)
    assert_no_pii(HttpResponse("**** 0128"))


def raw_log(logger: logging.Logger, level: int, msg: str, *args: object) -> None:
    """Log a record made without the process's record factory (which masks every message,
    huzhu.core.logging): what a logging path that bypassed the masking would hand the handlers."""
    logger.handle(logging.LogRecord(logger.name, level, __file__, 1, msg, args, None))


def test_records_are_masked_as_they_are_created(pii_guard: PiiGuard) -> None:
    """The first layer (S9): any record, of any logger — here Django's request logger with a path
    that carries an ID number — is masked before a handler sees it."""
    logging.getLogger("django.request").warning("Not Found: %s", f"/api/v1/orgs/{VALID_ID}")
    logging.getLogger("huzhu.anything").warning("call %s, card %s", PHONE, ACCOUNT)
    record = logging.getLogger("x").makeRecord(
        "x", logging.INFO, __file__, 1, "%s", (VALID_ID,), None
    )
    assert record.getMessage() == "430***********0033"
    pii_guard.check_logs()


def test_log_record_with_an_id_number_fails_at_teardown(pii_guard: PiiGuard) -> None:
    raw_log(logging.getLogger("huzhu.anything"), logging.WARNING, "member %s imported", VALID_ID)
    with pytest.raises(PiiLeak, match=r"logger 'huzhu\.anything'"):
        pii_guard.check_logs()
    pii_guard.forget_logs()  # this test leaked on purpose; the guard's own teardown stays quiet


def test_log_records_of_non_propagating_loggers_are_seen(pii_guard: PiiGuard) -> None:
    pii_guard.track("members.Member.phone_enc", PHONE)
    quiet = logging.getLogger("huzhu.quiet")
    quiet.propagate = False
    try:
        raw_log(quiet, logging.ERROR, "call %s", PHONE)
    finally:
        quiet.propagate = True
    with pytest.raises(PiiLeak, match="mobile number"):
        pii_guard.check_logs()
    pii_guard.forget_logs()


def test_masked_log_lines_pass(pii_guard: PiiGuard) -> None:
    logging.getLogger("huzhu.anything").warning("member 430***********0033 imported")
    pii_guard.check_logs()


def test_the_autouse_guard_fails_a_leaking_test_end_to_end(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run a small suite in a subprocess: the leaking tests must fail, the clean ones pass."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    # The inner run uses its own in-memory SQLite database: on PostgreSQL it would pick the same
    # test database name as this run and drop it.
    monkeypatch.delenv("HUZHU_DATABASE_URL", raising=False)
    monkeypatch.setenv("HUZHU_VAR_DIR", str(pytester.path / "var"))
    pytester.makepyfile(
        test_inner=textwrap.dedent(
            """
            import logging

            import pytest
            from django.http import HttpResponse
            from django.urls import path

            from tests import factories

            def leak(request):
                return HttpResponse(request.GET["v"])

            urlpatterns = [path("leak/", leak)]

            def test_logs_an_id_number():
                # Made without the masking record factory: what the guard exists to catch.
                logger = logging.getLogger("huzhu.x")
                logger.handle(
                    logging.LogRecord(
                        "huzhu.x", logging.INFO, "", 1, "id 430102197503010033", None, None
                    )
                )

            def test_logs_nothing_sensitive():
                logging.getLogger("huzhu.x").info("id 430***********0033")

            @pytest.mark.urls(__name__)
            @pytest.mark.django_db
            def test_page_shows_a_stored_id_number(client):
                tree = factories.tree()
                member = factories.member(tree.grassroots_1, tree.unit_1)
                client.get("/leak/", {"v": member.id_number_enc})

            @pytest.mark.urls(__name__)
            @pytest.mark.django_db
            def test_page_shows_the_masked_form(client):
                tree = factories.tree()
                member = factories.member(tree.grassroots_1, tree.unit_1)
                client.get("/leak/", {"v": member.id_number_masked})
            """
        )
    )
    # Loaded from the inner root conftest, after pytest-django has set Django up.
    pytester.makeconftest("pytest_plugins = ['tests.conftest']")
    result = pytester.runpytest_subprocess(
        "--ds=huzhu.settings.test",
        "--nomigrations",  # the inner tests need tables, not the migration history
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-q",
    )
    result.assert_outcomes(passed=2, failed=2)
    output = result.stdout.str()
    assert "PiiLeak" in output
    assert "test_logs_an_id_number" in output and "test_page_shows_a_stored_id_number" in output
