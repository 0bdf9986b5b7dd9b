"""Bearer tokens (INTERFACES.md §3): created by the CLI, looked up by digest, refused when missing,
unknown, revoked, expired or when the account is disabled; ``last_used_at`` written at most once a
minute; permissions answer 403 on a collection and 404 on an object."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from huzhu import cli
from huzhu.api.errors import NOT_FOUND_MESSAGE, UNAUTHORIZED_MESSAGE
from huzhu.core.models import AuditEvent
from huzhu.orgs.models import ApiToken
from huzhu.orgs.services import create_api_token
from tests import factories
from tests.api.conftest import Answer, ApiClient, World


def test_cli_token_create_prints_a_working_token(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    audit_before = AuditEvent.objects.filter(event="auth.token_created").count()
    assert cli.main(["token", "create", world.clerk.username]) == cli.EXIT_OK
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 1  # the token alone, on one line (INTERFACES.md §2)
    token = lines[0]
    assert token.startswith("hz_")
    answer = ApiClient(token).get("members")
    assert answer.status == 200
    assert [m["name"] for m in answer.body["items"]] == ["李娜"]
    assert AuditEvent.objects.filter(event="auth.token_created").count() == audit_before + 1
    # Only the digest is stored (the token is shown once).
    row = ApiToken.objects.get(digest=ApiToken.digest_of(token))
    assert row.user == world.clerk
    assert row.prefix == token[:8]
    assert not ApiToken.objects.filter(digest=token).exists()


def test_cli_token_create_for_unknown_or_disabled_account_fails(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["token", "create", "nobody"]) == cli.EXIT_UNUSABLE
    world.auditor.is_active = False
    world.auditor.save(update_fields=["is_active"])
    assert cli.main(["token", "create", world.auditor.username]) == cli.EXIT_UNUSABLE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "账号不存在或已停用" in captured.err


def _assert_401(answer: Answer) -> None:
    assert answer.status == 401
    assert answer.body == {"detail": UNAUTHORIZED_MESSAGE}
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="huzhu"'


@pytest.mark.parametrize("path", ["orgs", "units", "members", "members/1", "units/1", "orgs/1"])
def test_missing_token_is_401(world: World, path: str) -> None:
    _assert_401(ApiClient(None).get(path))


def test_malformed_and_unknown_tokens_are_401(world: World) -> None:
    client = Client()
    for header in ("Token abc", "Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "bearer nope"):
        response = client.get("/api/v1/members", headers={"Authorization": header})
        assert response.status_code == 401, header
    _assert_401(world.clerk_api.get("members", token="hz_" + "x" * 43))
    _assert_401(world.clerk_api.get("members", token="y" * 500))
    # The scheme is case-insensitive (RFC 7235).
    response = client.get(
        "/api/v1/members", headers={"Authorization": f"bearer {world.clerk_api.token}"}
    )
    assert response.status_code == 200


def test_revoked_token_is_401(world: World) -> None:
    assert world.clerk_api.get("members").status == 200
    ApiToken.objects.filter(digest=ApiToken.digest_of(world.clerk_api.token or "")).update(
        revoked_at=timezone.now()
    )
    _assert_401(world.clerk_api.get("members"))


def test_expired_token_is_401(world: World) -> None:
    row = ApiToken.objects.get(digest=ApiToken.digest_of(world.clerk_api.token or ""))
    row.expires_at = timezone.now() + timedelta(seconds=30)
    row.save(update_fields=["expires_at"])
    assert world.clerk_api.get("members").status == 200
    row.expires_at = timezone.now() - timedelta(seconds=1)
    row.save(update_fields=["expires_at"])
    _assert_401(world.clerk_api.get("members"))


def test_token_of_a_disabled_account_is_401(world: World) -> None:
    world.clerk.is_active = False
    world.clerk.save(update_fields=["is_active"])
    _assert_401(world.clerk_api.get("orgs"))


def test_token_created_with_days_expires_accordingly(world: World) -> None:
    token = create_api_token(acting_user=None, user=world.clerk, days=7)
    row = ApiToken.objects.get(digest=ApiToken.digest_of(token))
    assert row.expires_at is not None
    assert timedelta(days=6, hours=23) < row.expires_at - timezone.now() <= timedelta(days=7)


def test_last_used_at_is_written_at_most_once_a_minute(world: World) -> None:
    digest = ApiToken.digest_of(world.clerk_api.token or "")
    assert ApiToken.objects.get(digest=digest).last_used_at is None
    assert world.clerk_api.get("orgs").status == 200
    first = ApiToken.objects.get(digest=digest).last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        assert world.clerk_api.get("orgs").status == 200
    assert not [q for q in queries.captured_queries if "UPDATE" in q["sql"].upper()]
    assert ApiToken.objects.get(digest=digest).last_used_at == first
    ApiToken.objects.filter(digest=digest).update(last_used_at=first - timedelta(minutes=2))
    assert world.clerk_api.get("orgs").status == 200
    assert ApiToken.objects.get(digest=digest).last_used_at > first  # type: ignore[operator]


def test_a_browser_session_does_not_authenticate_the_api(world: World) -> None:
    """Only the bearer token counts: a logged-in session cookie (which a forged cross-site
    request would carry) gets 401."""
    client = Client()
    client.force_login(world.clerk)
    response = client.get("/api/v1/members")
    assert response.status_code == 401
    response = client.post("/api/v1/units", "{}", content_type="application/json")
    assert response.status_code == 401


def test_collection_without_permission_is_403_object_is_404(world: World) -> None:
    # The security administrator holds no business permission (三员分立).
    listing = world.secadmin_api.get("members")
    assert listing.status == 403
    assert listing.body == {"detail": "您的角色无权执行此操作（需要权限 member.view）"}
    assert world.secadmin_api.get("units").status == 403
    # An object answers 404, exactly like an object outside the subtree.
    secadmin_at_county = factories.staff(world.tree.county_a1, "secadmin")
    api = ApiClient(create_api_token(acting_user=None, user=secadmin_at_county))
    detail = api.get(f"members/{world.member_1.pk}")
    assert detail.status == 404
    assert detail.body == {"detail": NOT_FOUND_MESSAGE}
    # Organisations are visible to every role (each administrator manages its subtree).
    assert api.get(f"orgs/{world.tree.county_a1.pk}").status == 200


def test_permission_is_checked_before_the_body(world: World) -> None:
    """A caller without the permission learns nothing from validation: 403/404 even for an
    invalid body."""
    create = world.auditor_api.post("members", {"bogus": True})
    assert create.status == 403
    assert create.body == {"detail": "您的角色无权执行此操作（需要权限 member.edit）"}
    update = world.auditor_api.put(f"members/{world.member_1.pk}", {"bogus": True})
    assert update.status == 404
    assert update.body == {"detail": NOT_FOUND_MESSAGE}


def test_api_answers_are_not_cached(world: World) -> None:
    for answer in (
        world.clerk_api.get("members"),
        world.clerk_api.get(f"members/{world.member_2.pk}"),
        ApiClient(None).get("members"),
    ):
        assert answer.headers["Cache-Control"] == "no-store"
