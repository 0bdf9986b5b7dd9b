"""Shared fixtures, and the S9 guard that runs around every test.

S9 (SECURITY.md): the suite fails if any log line, or any response to a role without the right,
contains an unmasked ID number, mobile number or bank card number. The autouse ``pii_guard``:

* tracks every plain ID number, phone and bank account the test stores — every value that goes
  through field encryption (``huzhu.core.crypto``) under a context naming such a field — so the
  check looks for the exact values the test created (precise: no false alarms on other digits);
* records every log record of every logger during the test (``logging.Logger.callHandlers`` is
  wrapped, so this sees records before any masking filter and survives a ``dictConfig`` re-run by
  ``django.setup()``) and fails the test at teardown when one contains a tracked value or any
  18-character string that is a valid GB 11643 ID number (checksum and birth date);
* checks every response of ``django.test.Client`` (and django-ninja's ``TestClient``) — body,
  ``Location`` and ``Content-Disposition``, zipped spreadsheet parts unpacked — for the tracked
  values and raises ``PiiLeak`` at once. A response that legitimately shows a plain value (the
  audited reveal endpoint, a member's own data in the portal, a user's own uploaded rows handed
  back) marks itself with the header ``X-Huzhu-Reveal: 1`` and is not checked.

``pii_guard.allow(value)`` exempts a value a test deliberately echoes (use sparingly, say why);
``assert_no_pii(response_or_text)`` checks anything explicitly (tracked values + generic ID scan).
"""

from __future__ import annotations

import io
import logging
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as _RealAESGCM
from django.core.servers.basehttp import WSGIServer
from django.test import Client
from django.test.testcases import LiveServerThread
from hypothesis import settings as hypothesis_settings

from huzhu.core import crypto
from huzhu.core.ids import is_valid_id_number
from huzhu.core.logging import mask_text
from tests import factories

pytest_plugins = ["pytester"]

# In CI the property tests run derandomized (the same examples every run), so a landing never
# depends on luck; locally they explore new examples on every run.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

REVEAL_HEADER = "X-Huzhu-Reveal"
_ID_CANDIDATE = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
_ZIP_MAGIC = b"PK\x03\x04"

# Encryption contexts are "app.Model.field"; these words in the field name mark what it holds.
_KIND_BY_WORD = (
    ("id_number", "ID number"),
    ("certno", "ID number"),
    ("phone", "mobile number"),
    ("mobile", "mobile number"),
    ("bank", "bank account"),
    ("account", "bank account"),
)


class PiiLeak(AssertionError):
    """Plain personal data where S9 forbids it."""


def find_id_numbers(text: str) -> list[str]:
    """Every valid 18-character ID number in ``text`` (generic scan: checksum + real date)."""
    return [m.group(0) for m in _ID_CANDIDATE.finditer(text) if is_valid_id_number(m.group(0))]


@dataclass
class PiiGuard:
    values: dict[str, str] = field(default_factory=dict)  # plain value -> kind
    allowed: set[str] = field(default_factory=set)
    log_records: list[tuple[str, str]] = field(default_factory=list)  # (logger, text)
    responses_checked: int = 0
    logs_checked: int = 0

    # -- tracking ----------------------------------------------------------------------------
    def track(self, context: str, plaintext: str) -> None:
        name = context.rsplit(".", 1)[-1].lower()
        for word, kind in _KIND_BY_WORD:
            if word in name:
                value = plaintext.strip()
                if len(value) >= 7:
                    self.values[value] = kind
                    if value.endswith("X"):
                        self.values[value[:-1] + "x"] = kind
                return

    def allow(self, *values: str) -> None:
        """Exempt values the test itself deliberately shows (e.g. echoed form input)."""
        for value in values:
            self.allowed.update({value, value.upper(), value.lower()})

    def forget_logs(self) -> None:
        """For tests of this guard only: drop the records captured so far."""
        self.log_records.clear()
        self.logs_checked = 0

    # -- checking ----------------------------------------------------------------------------
    def leaks_in(self, text: str, *, generic: bool) -> list[str]:
        found: list[str] = []
        for value, kind in self.values.items():
            if value in text and value not in self.allowed:
                found.append(f"{kind} {mask_text(value)}")
        if generic:
            for number in find_id_numbers(text):
                if number not in self.allowed and number not in self.values:
                    found.append(f"ID number {mask_text(number)}")
        return found

    def check_text(self, text: str, where: str, *, generic: bool = True) -> None:
        found = self.leaks_in(text, generic=generic)
        if found:
            raise PiiLeak(f"S9: plain personal data in {where}: " + ", ".join(sorted(set(found))))

    def check_response(self, response: Any, description: str) -> None:
        if response.get(REVEAL_HEADER) == "1":
            return
        self.responses_checked += 1
        parts = [*_headers(response), _body_text(response)]
        self.check_text("\n".join(parts), f"the response to {description}", generic=False)

    def check_logs(self) -> None:
        """Check the records not checked yet (after the test's call, then at teardown)."""
        problems = []
        pending, self.logs_checked = self.log_records[self.logs_checked :], len(self.log_records)
        for logger_name, text in pending:
            found = self.leaks_in(text, generic=True)
            if found:
                problems.append(f"logger {logger_name!r}: " + ", ".join(sorted(set(found))))
        if problems:
            raise PiiLeak("S9: plain personal data in log records: " + "; ".join(problems))

    def record_log(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is the logging call's problem, not ours
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + repr(record.exc_info[1])
        if record.exc_text:
            text += "\n" + record.exc_text
        self.log_records.append((record.name, text))


def _headers(response: Any) -> list[str]:
    return [response.get("Location", "") or "", response.get("Content-Disposition", "") or ""]


def _body_text(response: Any) -> str:
    if getattr(response, "streaming", False) and hasattr(response, "streaming_content"):
        chunks = [
            c.encode() if isinstance(c, str) else bytes(c) for c in response.streaming_content
        ]
        content = b"".join(chunks)
        response.streaming_content = [content]  # keep it readable for the test
    else:
        content = bytes(response.content)
    texts = [content.decode("utf-8", errors="replace")]
    if content.startswith(_ZIP_MAGIC):  # .xlsx and other zipped exports: check every part
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                texts += [
                    archive.read(n).decode("utf-8", errors="replace") for n in archive.namelist()
                ]
        except zipfile.BadZipFile:
            pass
    return "\n".join(texts)


class _TrackingAESGCM:
    """Stands in for AESGCM inside ``huzhu.core.crypto``: records what it encrypts."""

    guard: PiiGuard

    def __init__(self, key: bytes) -> None:
        self._inner = _RealAESGCM(key)

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        if associated_data is not None:
            self.guard.track(
                associated_data.decode(errors="replace"), data.decode(errors="replace")
            )
        return self._inner.encrypt(nonce, data, associated_data)

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        return self._inner.decrypt(nonce, data, associated_data)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Check the log records right after the test body, so a leak fails the test itself."""
    result = yield
    guard = getattr(item, "funcargs", {}).get("pii_guard")
    if isinstance(guard, PiiGuard):
        guard.check_logs()
    return result


@pytest.fixture(autouse=True)
def pii_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[PiiGuard]:
    guard = PiiGuard()
    tracking = type("TrackingAESGCM", (_TrackingAESGCM,), {"guard": guard})
    monkeypatch.setattr(crypto, "AESGCM", tracking)

    original_call_handlers = logging.Logger.callHandlers

    def call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
        guard.record_log(record)
        original_call_handlers(self, record)

    monkeypatch.setattr(logging.Logger, "callHandlers", call_handlers)

    original_request = Client.request

    def request(self: Client, **kwargs: Any) -> Any:
        response = original_request(self, **kwargs)
        method = kwargs.get("REQUEST_METHOD", "GET")
        guard.check_response(response, f"{method} {kwargs.get('PATH_INFO', '')}")
        return response

    monkeypatch.setattr(Client, "request", request)

    try:
        from ninja.testing.client import TestClient as NinjaTestClient
    except ImportError:  # pragma: no cover - django-ninja is a dependency
        NinjaTestClient = None
    if NinjaTestClient is not None:
        original_call = NinjaTestClient._call

        def ninja_call(self: Any, func: Callable[..., Any], req: Any, kwargs: Any) -> Any:
            response = original_call(self, func, req, kwargs)
            guard.check_response(response._response, f"{req.method} {req.path}")
            return response

        monkeypatch.setattr(NinjaTestClient, "_call", ninja_call)

    yield guard
    guard.check_logs()


@pytest.fixture
def assert_no_pii(pii_guard: PiiGuard) -> Callable[[Any], None]:
    """``assert_no_pii(response_or_text)``: tracked values and any valid ID number fail."""

    def check(subject: Any) -> None:
        if isinstance(subject, bytes):
            text = subject.decode("utf-8", errors="replace")
        elif isinstance(subject, str):
            text = subject
        else:
            text = "\n".join([*_headers(subject), _body_text(subject)])
        pii_guard.check_text(text, "checked content", generic=True)

    return check


@pytest.fixture(scope="session", autouse=True)
def _append_only_tables_allow_the_test_flush() -> Iterator[None]:
    """Transactional tests (``django_db(transaction=True)``, ``live_server``) end with a flush of
    every table, which the append-only triggers (audit log S8, ledger S15) rightly refuse. For the
    flush alone — never for a test body — the triggers are suspended: on SQLite dropped and
    re-created from their own stored SQL, on PostgreSQL switched off for the session with
    ``session_replication_role = replica`` (the test role is a superuser)."""
    from django.db.backends.base.operations import BaseDatabaseOperations

    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: BaseDatabaseOperations, sql_list: list[str]) -> None:
        connection = self.connection
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
                triggers = cursor.fetchall()
                for name, _ in triggers:
                    cursor.execute(f'DROP TRIGGER "{name}"')
                try:
                    original(self, sql_list)
                finally:
                    for _, sql in triggers:
                        cursor.execute(sql)
            elif connection.vendor == "postgresql":
                cursor.execute("SET session_replication_role = replica")
                try:
                    original(self, sql_list)
                finally:
                    cursor.execute("SET session_replication_role = DEFAULT")
            else:  # pragma: no cover - only SQLite and PostgreSQL are supported
                original(self, sql_list)

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign]
    yield
    BaseDatabaseOperations.execute_sql_flush = original  # type: ignore[method-assign]


@pytest.fixture
def tree(db: None) -> factories.Tree:
    return factories.tree()


@pytest.fixture(scope="session", autouse=True)
def _end_stray_postgres_sessions(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Live-server (browser) tests leave a connection of the server thread open on PostgreSQL,
    which keeps pytest-django from dropping the test database; end such sessions first."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


class _SerialLiveServer(WSGIServer):
    """The browser tests' live server answers one request at a time.

    Django's default threaded live server lets the browser's parallel requests (htmx loads the
    tree's counts side by side) share the test's single in-memory SQLite connection, which fails
    at random with "cannot start a transaction within a transaction". A non-threaded server also
    answers every response with ``Connection: close``, so the browser never holds it up.
    """

    def __init__(self, *args: Any, connections_override: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections_override = connections_override


LiveServerThread.server_class = _SerialLiveServer
