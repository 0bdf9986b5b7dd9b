"""The OpenAPI contract at /api/v1/openapi.json and the Swagger UI at /api/v1/docs, served with no
internet access (every asset from the application itself)."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from huzhu.api.docs import ASSETS, SWAGGER_DIR

STAFF_OPERATIONS = {
    ("/api/v1/orgs", "get"): "org.view",
    ("/api/v1/orgs/{union_id}", "get"): "org.view",
    ("/api/v1/units", "get"): "unit.view",
    ("/api/v1/units", "post"): "unit.edit",
    ("/api/v1/units/{unit_id}", "get"): "unit.view",
    ("/api/v1/units/{unit_id}", "put"): "unit.edit",
    ("/api/v1/members", "get"): "member.view",
    ("/api/v1/members", "post"): "member.edit",
    ("/api/v1/members/{member_id}", "get"): "member.view",
    ("/api/v1/members/{member_id}", "put"): "member.edit",
}


@pytest.fixture
def schema(db: None) -> dict[str, object]:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    return json.loads(response.content)  # type: ignore[no-any-return]


def test_schema_lists_every_staff_operation_with_its_permission(schema: dict) -> None:
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "职工互助保障平台 API"
    paths = schema["paths"]
    for (path, method), perm in STAFF_OPERATIONS.items():
        operation = paths[path][method]
        assert operation["x-permission"] == perm
        assert operation["security"] == [{"StaffToken": []}]
        assert operation["summary"]  # Chinese summaries for the docs page
    # The docs assets are not part of the contract.
    assert not [p for p in paths if p.startswith("/api/v1/docs")]
    assert schema["components"]["securitySchemes"]["StaffToken"] == {
        "type": "http",
        "scheme": "bearer",
    }


def test_schema_documents_the_error_shape_and_forbids_extra_input(schema: dict) -> None:
    components = schema["components"]["schemas"]
    create = schema["paths"]["/api/v1/members"]["post"]
    responses = create["responses"]
    assert set(responses) >= {"201", "401", "403", "422"}
    ref = responses["422"]["content"]["application/json"]["schema"]["$ref"]
    error_schema = components[ref.rsplit("/", 1)[-1]]
    item_ref = error_schema["properties"]["detail"]["items"]["$ref"]
    item = components[item_ref.rsplit("/", 1)[-1]]
    assert set(item["properties"]) == {"loc", "field", "msg", "code"}
    body_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = components[body_ref.rsplit("/", 1)[-1]]
    assert body["additionalProperties"] is False
    assert set(body["required"]) == {"name", "id_number", "employment_type"}
    member_out = components["MemberOut"]["properties"]
    assert "id_number_masked" in member_out
    assert not [name for name in member_out if name in {"id_number", "phone", "bank_account"}]


def test_docs_page_uses_only_local_assets(db: None) -> None:
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(sources) == [
        "/api/v1/docs/swagger-ui-bundle.js",
        "/api/v1/docs/swagger-ui-init.js",
        "/api/v1/docs/swagger-ui.css",
    ]
    assert "cdn" not in html.lower()
    # No inline script: the settings travel as a JSON data block (CSP script-src 'self').
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    inline = [attrs for attrs, body in scripts if body.strip() and "application/json" not in attrs]
    assert inline == []
    settings_block = re.search(r'id="swagger-settings"[^>]*>(.*?)</script>', html, re.S)
    assert settings_block is not None
    assert json.loads(settings_block.group(1))["url"] == "/api/v1/openapi.json"
    assert "script-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_docs_assets_are_served_by_the_application(db: None, name: str) -> None:
    file_name, content_type = ASSETS[name]
    response = Client().get(f"/api/v1/docs/{file_name}")
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert b"".join(response.streaming_content) == (SWAGGER_DIR / file_name).read_bytes()  # type: ignore[attr-defined]
    assert "max-age" in response["Cache-Control"]


def test_every_schema_class_has_its_own_name(schema: dict) -> None:
    """The OpenAPI components are keyed by class name: two request/answer classes of the same
    name would silently share one component, documenting one operation's body for another."""
    import importlib
    import pkgutil

    from ninja import Schema

    import huzhu.api

    for module in pkgutil.iter_modules(huzhu.api.__path__):
        importlib.import_module(f"huzhu.api.{module.name}")
    seen: dict[str, str] = {}
    pending = list(Schema.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not cls.__module__.startswith("huzhu."):
            continue
        where = f"{cls.__module__}.{cls.__qualname__}"
        assert seen.setdefault(cls.__name__, where) == where, (cls.__name__, seen[cls.__name__])
    components = schema["components"]["schemas"]
    assert set(components["PaymentBatchOut"]["required"]) >= {"number", "line_count", "total"}
    assert "plan_code" in components["BatchOut"]["properties"]  # the enrollment batch
