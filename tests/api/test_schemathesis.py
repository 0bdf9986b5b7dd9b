"""The whole API against its own OpenAPI contract (issue #5 item 6): schemathesis generates
requests for every operation of /api/v1/openapi.json and sends them in-process to the WSGI
application; no answer may be a server error (5xx) and every answer must match the schema
documented for its status code.

Staff operations carry a bearer token of a user holding every staff permission the API uses
(clerk + finance + plan manager at the province). The partner operations (settlements, feed
files, reconciliations) carry valid partner signature headers computed over the exact bytes sent
(``huzhu.claims.partner_signing``), so their bodies reach the validation and the services instead
of stopping at the 401.

Bounded: examples and fuzzing phases only, ``MAX_EXAMPLES`` per operation — a few seconds per
operation on two cores. Deterministic in CI (``CI`` set): the same requests every run.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import response_schema_conformance

from huzhu.claims import partners, pricing
from huzhu.claims.partner_signing import string_to_sign
from huzhu.orgs.services import create_api_token
from tests import factories
from tests.claims.conftest import covered_person, make_partner, settle_body
from tests.claims.test_partner_api import KEY, Signer, send
from tests.enrollment.conftest import active_plan

MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, response_schema_conformance]
PARTNER_PREFIX = "/api/v1/settlements"
# Every operation a partner calls with its signature: real-time settlements, feed files and
# reconciliations.
PARTNER_PREFIXES = (PARTNER_PREFIX, "/api/v1/settlement-files", "/api/v1/reconciliations")


class InProcess:
    """The project's WSGI application for in-process calls inside the test's transaction. Django
    closes "old" connections when a request starts and finishes, which would close the test's
    connection (and its transaction): like Django's own test client, each call switches that off
    for its request only."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request_started.disconnect(close_old_connections)
        try:
            response = self.handler(environ, start_response)
        finally:
            request_started.connect(close_old_connections)
        original_close = response.close

        def close() -> None:  # request_finished is sent from here
            request_finished.disconnect(close_old_connections)
            try:
                original_close()
            finally:
                request_finished.connect(close_old_connections)

        response.close = close
        return response


@pytest.fixture
def app() -> InProcess:
    return InProcess()


@pytest.fixture
def world(db: None) -> dict[str, Any]:
    pricing.clear_caches()
    partners.clear_partner_cache()
    tree = factories.tree()
    plan = active_plan(2026)
    staff = factories.staff(tree.province, "clerk", "finance", "plan_manager")
    partner = make_partner(tree.city_a)
    person = covered_person(tree, plan)
    # A settlement the documented cancel example (setl_id S202603100001) can find.
    signer = Signer(partner.partner_id, key=KEY)
    body = settle_body(person.certno, "S202603100001")
    first = send(Client(), signer, PARTNER_PREFIX, body)
    assert first.status == 200, first.body
    return {
        "token": create_api_token(acting_user=None, user=staff),
        "signer": signer,
        "person": person,
    }


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": bool(os.environ.get("CI")),
                "database": "none",
            },
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
            "suppress-health-check": ["too_slow"],
        }
    )


def _load() -> schemathesis.BaseSchema:
    """The contract exactly as /api/v1/openapi.json serves it (built without a request, so the
    operations are known when pytest collects the tests)."""
    from huzhu.api.main import api

    loaded = schemathesis.openapi.from_dict(api.get_openapi_schema(), config=_config())
    return loaded


schema = _load()


@pytest.fixture
def api_schema(app: InProcess) -> schemathesis.BaseSchema:
    schema.app = app
    return schema


def test_the_contract_is_the_served_schema(db: None) -> None:
    from huzhu.api.main import api

    response = Client().get("/api/v1/openapi.json")
    assert json.loads(response.content) == json.loads(json.dumps(api.get_openapi_schema()))


def _body_bytes(case: schemathesis.Case) -> bytes:
    """The bytes sent (and signed): the generated body as JSON (text as it is, for the feed's
    CSV and JSON-lines files); raw bytes (negative cases) as they are."""
    body = case.body
    if isinstance(body, NotSet):
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str) and case.media_type and not case.media_type.endswith("json"):
        return body.encode("utf-8", "surrogatepass")
    return json.dumps(body, ensure_ascii=False, default=_jsonable).encode("utf-8", "surrogatepass")


def _jsonable(value: object) -> object:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _partner_path(case: schemathesis.Case) -> str:
    """The path Django sees (decoded, no query string), which is what the partner signs."""
    return urllib.parse.unquote(case.formatted_path)


def call(case: schemathesis.Case, world: dict[str, Any], app: InProcess) -> schemathesis.Response:
    if case.operation.path.startswith(PARTNER_PREFIXES):
        data = _body_bytes(case)
        signer: Signer = world["signer"]
        headers = signer.headers(case.method.upper(), _partner_path(case), data)
        headers["Content-Type"] = case.media_type or "application/json"
        for name, value in (case.headers or {}).items():  # X-Record-Count, X-Amount-Total
            headers.setdefault(name, value)
        return case.call(app=app, data=data, headers=headers)
    return case.call(app=app, headers={"Authorization": f"Bearer {world['token']}"})


@schema.parametrize()
# The world fixture is built once per operation and shared by its examples on purpose.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_every_operation_answers_within_its_contract(
    case: schemathesis.Case, world: dict[str, Any], app: InProcess
) -> None:
    response = call(case, world, app)
    case.validate_response(response, checks=CHECKS)


def test_the_partner_operations_are_reached_past_the_signature(
    api_schema: schemathesis.BaseSchema, world: dict[str, Any], app: InProcess
) -> None:
    """Control for the signing above: a valid settle body, signed the same way, is priced (200,
    the documented answer); a corrupted signature is refused (401) — so the fuzzing reaches the
    validation and the service rather than the authentication."""
    operation = api_schema["/api/v1/settlements"]["POST"]
    person = world["person"]
    case = operation.Case(body=settle_body(person.certno, "S-SCHEMA-0001", base="3000.00"))
    response = call(case, world, app)
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("approved", "pending_review")
    case.validate_response(response, checks=CHECKS)
    cancel = api_schema["/api/v1/settlements/{setl_id}/cancel"]["POST"]
    case = cancel.Case(
        path_parameters={"setl_id": "S-SCHEMA-0001"}, body={"cancel_time": "2026-03-12 08:00:00"}
    )
    response = call(case, world, app)
    assert response.status_code == 200, response.text
    case.validate_response(response, checks=CHECKS)
    data = b"{}"
    headers = world["signer"].headers("POST", PARTNER_PREFIX, b"[]")
    refused = operation.Case(body={}).call(app=app, data=data, headers=headers)
    assert refused.status_code == 401
    assert string_to_sign("1", "n", "post", "/p", data).startswith(b"1\nn\nPOST\n/p\n")


def test_the_feed_operations_are_reached_past_the_signature(
    api_schema: schemathesis.BaseSchema, world: dict[str, Any], app: InProcess
) -> None:
    """The same control for the feed: signed, an unknown file is a 404 and a file whose
    declaration does not match is a 422 — answers of the service, not of the authentication."""
    operation = api_schema["/api/v1/settlement-files/{file_id}"]["GET"]
    response = call(operation.Case(path_parameters={"file_id": 987654}), world, app)
    assert response.status_code == 404, response.text
    upload = api_schema["/api/v1/settlement-files"]["POST"]
    case = upload.Case(
        body="not,a,settlement\n",
        media_type="text/csv",
        headers={"X-Record-Count": "1", "X-Amount-Total": "0.00"},
    )
    response = call(case, world, app)
    assert response.status_code == 422, response.text
    case.validate_response(response, checks=CHECKS)
