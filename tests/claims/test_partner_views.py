"""Partner management (S14): the services (validation in Chinese, numbering, the key stored only
encrypted, audit without secrets), the screens of the system administrator (the key shown once),
and ``huzhu partner create`` / ``huzhu partner sign``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from huzhu.claims import partners
from huzhu.claims.models import Partner, Settlement, SignatureMethod
from huzhu.claims.partner_signing import (
    new_sm2_key_pair,
    sign_hmac,
    string_to_sign,
    verify_sm2,
)
from huzhu.cli import main
from huzhu.core.errors import InvalidInput
from huzhu.core.models import AuditEvent
from tests import factories
from tests.claims.conftest import settle_body
from tests.claims.test_partner_api import SETTLE, Signer, send
from tests.web.conftest import login_verified

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_partner_cache() -> Iterator[None]:
    partners.clear_partner_cache()
    yield
    partners.clear_partner_cache()


@pytest.fixture
def sysadmin(tree: factories.Tree) -> Client:
    return login_verified(Client(), factories.staff(tree.city_a, "sysadmin", username="city_admin"))


def stored_key_column(partner: Partner) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key_enc FROM claims_partner WHERE id = %s", [partner.pk])
        return bytes(cursor.fetchone()[0])


def events(name: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=name).order_by("id"))


# --- services ----------------------------------------------------------------------------------
def test_create_partner_numbers_by_region_and_keeps_the_key_encrypted(tree):
    first, key = partners.create_partner(
        acting_user=None,
        name="长沙市医疗保障事务中心",
        organisation=tree.city_a,
        scopes=["settle", "cancel"],
        ip_allowlist="10.1.2.0/24, 10.9.9.9",
    )
    second, key2 = partners.create_partner(
        acting_user=None, name="长沙市某医院", organisation=tree.city_a, scopes=["settle"]
    )
    grassroots, _ = partners.create_partner(
        acting_user=None, name="某公司工会系统", organisation=tree.grassroots_1, scopes=["settle"]
    )
    assert (first.partner_id, second.partner_id) == ("P430100001", "P430100002")
    assert grassroots.partner_id == "P430102001"  # the county's region: g1 has none of its own
    assert re.fullmatch(r"[0-9a-f]{64}", key) and key != key2
    assert first.ip_allowlist == "10.1.2.0/24\n10.9.9.9"
    assert first.scopes == ["settle", "cancel"]
    assert Partner.objects.get(pk=first.pk).key_enc == key
    assert key.encode() not in stored_key_column(first)
    (event, *_) = events(partners.EVENT_PARTNER_CREATED)
    assert event.detail["partner"] == "P430100001"
    assert key not in json.dumps(event.detail)


def test_create_partner_reports_every_error_in_chinese(tree):
    with pytest.raises(InvalidInput) as caught:
        partners.create_partner(
            acting_user=None,
            name="",
            organisation=tree.city_a,
            method="rsa",
            scopes=["settle", "delete"],
            ip_allowlist="10.1.2.1/24\nnot-an-ip\n300.1.1.1",
            sm2_public_key="04abcd",
        )
    errors = caught.value.by_field()
    assert errors["name"] == ["名称不能为空"]
    assert errors["method"] == ["签名方式应为 hmac（HMAC-SHA256）或 sm2（SM3withSM2）"]
    assert errors["scopes"][0].startswith("未知的权限范围：delete")
    assert errors["ip_allowlist"] == [
        "“10.1.2.1/24”的主机位不为 0：网段应写作 10.1.2.0/24",
        "“not-an-ip”不是有效的 IP 地址或网段（如 10.1.2.3 或 10.1.2.0/24）",
        "“300.1.1.1”不是有效的 IP 地址或网段（如 10.1.2.3 或 10.1.2.0/24）",
    ]
    assert errors["sm2_public_key"] == ["只有 SM2 签名方式才填写 SM2 公钥"]
    assert not Partner.objects.exists()
    assert events(partners.EVENT_PARTNER_CREATED) == []


def test_sm2_partner_needs_a_point_on_the_curve(tree):
    _, public = new_sm2_key_pair()
    off_curve = public[:-1] + ("0" if public[-1] != "0" else "1")
    for bad in ("", off_curve, "04" + "zz" * 64):
        with pytest.raises(InvalidInput) as caught:
            partners.create_partner(
                acting_user=None,
                name="某医院",
                organisation=tree.city_a,
                method=SignatureMethod.SM2,
                scopes=["settle"],
                sm2_public_key=bad,
            )
        assert set(caught.value.by_field()) == {"sm2_public_key"}
    partner, key = partners.create_partner(
        acting_user=None,
        name="某医院",
        organisation=tree.city_a,
        method=SignatureMethod.SM2,
        scopes=["settle"],
        sm2_public_key=public[2:].upper(),  # without 04, upper case: normalised
    )
    assert key == "" and partner.key_enc is None
    assert partner.sm2_public_key == public


def test_organisation_outside_the_actors_scope_is_refused(tree):
    admin = factories.staff(tree.county_a1, "sysadmin")
    with pytest.raises(InvalidInput) as caught:
        partners.create_partner(
            acting_user=admin, name="越权合作方", organisation=tree.city_b, scopes=["settle"]
        )
    assert caught.value.by_field() == {"organisation": ["该工会组织不存在或不在您的管辖范围内"]}
    assert not Partner.objects.exists()


def test_update_rotate_deactivate_are_audited(tree, partner):
    admin = factories.staff(tree.city_a, "sysadmin")
    partners.update_partner(
        acting_user=admin, partner=partner, scopes=["settle"], ip_allowlist=["10.0.0.0/8"]
    )
    partner.refresh_from_db()
    assert (partner.scopes, partner.ip_allowlist) == (["settle"], "10.0.0.0/8")
    key = partners.rotate_key(acting_user=admin, partner=partner)
    partner.refresh_from_db()
    assert partner.key_enc == key and partner.key_rotated_at is not None
    partners.deactivate(acting_user=admin, partner=partner)
    partners.deactivate(acting_user=admin, partner=partner)  # no change, no second event
    partners.activate(acting_user=admin, partner=partner)
    names = [
        e.event
        for e in AuditEvent.objects.filter(event__startswith="claims.partner_").order_by("id")
    ]
    assert names == [
        partners.EVENT_PARTNER_UPDATED,
        partners.EVENT_PARTNER_KEY_ROTATED,
        partners.EVENT_PARTNER_DEACTIVATED,
        partners.EVENT_PARTNER_ACTIVATED,
    ]
    for event in AuditEvent.objects.filter(event__startswith="claims.partner_"):
        assert event.actor_username == admin.username
        assert key not in json.dumps(event.detail)


def test_update_with_bad_input_changes_nothing(partner):
    with pytest.raises(InvalidInput) as caught:
        partners.update_partner(
            acting_user=None, partner=partner, name="x" * 101, scopes=[], ip_allowlist="::1/64"
        )
    assert set(caught.value.by_field()) == {"name", "scopes", "ip_allowlist"}
    partner.refresh_from_db()
    assert partner.name == "长沙市医疗保障事务中心" and partner.ip_allowlist == ""
    assert events(partners.EVENT_PARTNER_UPDATED) == []


def test_rotate_key_of_an_sm2_partner_is_refused(tree):
    _, public = new_sm2_key_pair()
    partner, _ = partners.create_partner(
        acting_user=None,
        name="某医院",
        organisation=tree.city_a,
        method=SignatureMethod.SM2,
        scopes=["settle"],
        sm2_public_key=public,
    )
    with pytest.raises(InvalidInput):
        partners.rotate_key(acting_user=None, partner=partner)


def test_ipv6_and_mapped_addresses(partner):
    nets = partners.networks_of("2001:db8::/32\n10.0.0.0/8")
    assert partners.ip_allowed(nets, "2001:db8::1")
    assert partners.ip_allowed(nets, "::ffff:10.1.2.3")
    assert not partners.ip_allowed(nets, "2001:db9::1")
    assert not partners.ip_allowed(nets, "garbage")
    assert partners.ip_allowed((), "anything")


# --- screens -----------------------------------------------------------------------------------
def test_create_screen_shows_the_key_once(sysadmin, tree):
    page = sysadmin.get(reverse("partners:create"))
    assert page.status_code == 200
    response = sysadmin.post(
        reverse("partners:create"),
        {
            "name": "长沙市医疗保障事务中心",
            "union": str(tree.city_a.pk),
            "method": "hmac",
            "scopes": ["settle", "cancel"],
            "ip_allowlist": "10.1.2.0/24",
        },
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    partner = Partner.objects.get()
    key = str(partner.key_enc)
    text = response.content.decode()
    assert key in text and partner.partner_id in text
    assert "密钥只显示这一次" in text
    detail = sysadmin.get(reverse("partners:detail", args=[partner.pk]))
    assert detail.status_code == 200 and key not in detail.content.decode()
    assert key not in sysadmin.get(reverse("partners:list")).content.decode()


def test_create_screen_shows_every_error(sysadmin, tree):
    response = sysadmin.post(
        reverse("partners:create"),
        {"name": "", "union": str(tree.city_a.pk), "method": "hmac", "ip_allowlist": "1.2.3.4/8"},
    )
    assert response.status_code == 422
    text = response.content.decode()
    assert "名称不能为空" in text
    assert "至少选择一项权限范围" in text
    assert "网段应写作 1.0.0.0/8" in text
    assert not Partner.objects.exists()


def test_create_screen_refuses_a_union_outside_the_scope(sysadmin, tree):
    response = sysadmin.post(
        reverse("partners:create"),
        {"name": "越权", "union": str(tree.city_b.pk), "method": "hmac", "scopes": ["settle"]},
    )
    assert response.status_code == 422
    assert "不在您的管辖范围内" in response.content.decode()
    assert not Partner.objects.exists()


def test_detail_shows_scopes_ips_and_activity(sysadmin, partner, person):
    partners.update_partner(acting_user=None, partner=partner, ip_allowlist="10.1.2.0/24")
    partners.clear_partner_cache()
    assert (
        send(
            Client(), Signer(partner.partner_id), SETTLE, settle_body(person.certno), ip="10.1.2.9"
        ).status
        == 200
    )
    response = sysadmin.get(reverse("partners:detail", args=[partner.pk]))
    text = response.content.decode()
    assert response.status_code == 200
    assert "结算上传、结算撤销、批量文件" in text
    assert "10.1.2.0/24" in text
    last = Settlement.objects.get().received_at
    assert 'id="partner-total">1<' in text
    assert "尚无结算" not in text and str(last.year) in text


def test_rotate_screen_shows_the_new_key_once_and_the_old_one_stops(sysadmin, partner, person):
    old = str(partner.key_enc)
    response = sysadmin.post(reverse("partners:rotate", args=[partner.pk]))
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    partner.refresh_from_db()
    new = str(partner.key_enc)
    assert new != old and new in response.content.decode()
    assert (
        send(
            Client(), Signer(partner.partner_id, key=old), SETTLE, settle_body(person.certno)
        ).status
        == 401
    )
    assert (
        send(
            Client(), Signer(partner.partner_id, key=new), SETTLE, settle_body(person.certno)
        ).status
        == 200
    )


def test_deactivate_and_activate_screens(sysadmin, partner):
    response = sysadmin.post(reverse("partners:deactivate", args=[partner.pk]))
    assert response.status_code == 302
    partner.refresh_from_db()
    assert not partner.is_active
    assert sysadmin.get(reverse("partners:deactivate", args=[partner.pk])).status_code == 405
    sysadmin.post(reverse("partners:activate", args=[partner.pk]))
    partner.refresh_from_db()
    assert partner.is_active


def test_edit_screen_changes_scopes_and_ips(sysadmin, partner):
    url = reverse("partners:edit", args=[partner.pk])
    assert sysadmin.get(url).status_code == 200
    response = sysadmin.post(
        url, {"name": "新名称", "scopes": ["cancel"], "ip_allowlist": "192.168.1.0/24\n10.0.0.1"}
    )
    assert response.status_code == 302
    partner.refresh_from_db()
    assert (partner.name, partner.scopes, partner.ip_allowlist) == (
        "新名称",
        ["cancel"],
        "192.168.1.0/24\n10.0.0.1",
    )
    bad = sysadmin.post(url, {"name": "新名称", "scopes": [], "ip_allowlist": "x"})
    assert bad.status_code == 422
    assert "至少选择一项权限范围" in bad.content.decode()


def test_partners_outside_the_scope_are_404(tree):
    county_admin = login_verified(Client(), factories.staff(tree.county_a1, "sysadmin"))
    city_partner, _ = partners.create_partner(
        acting_user=None, name="市级合作方", organisation=tree.city_a, scopes=["settle"]
    )
    own, _ = partners.create_partner(
        acting_user=None, name="区级合作方", organisation=tree.county_a1, scopes=["settle"]
    )
    listing = county_admin.get(reverse("partners:list")).content.decode()
    assert "区级合作方" in listing and "市级合作方" not in listing
    assert county_admin.get(reverse("partners:detail", args=[city_partner.pk])).status_code == 404
    assert county_admin.post(reverse("partners:rotate", args=[city_partner.pk])).status_code == 404
    assert county_admin.get(reverse("partners:detail", args=[own.pk])).status_code == 200


def test_other_roles_do_not_see_the_partner_screens(tree, partner):
    clerk = login_verified(Client(), factories.staff(tree.city_a, "clerk"))
    assert clerk.get(reverse("partners:list")).status_code == 404
    assert clerk.get(reverse("partners:detail", args=[partner.pk])).status_code == 404
    nav = clerk.get(reverse("web:dashboard")).content.decode()
    assert "结算合作方" not in nav


def test_nav_lists_the_partner_screen_for_the_system_administrator(sysadmin):
    assert "结算合作方" in sysadmin.get(reverse("web:dashboard")).content.decode()


# --- command line ------------------------------------------------------------------------------
def test_cli_create_prints_exactly_two_lines(tree, capsys):
    code = main(
        [
            "partner",
            "create",
            "长沙市医疗保障事务中心",
            "--org",
            tree.city_a.code,
            "--scopes",
            "settle,cancel,batch",
            "--ip",
            "10.1.2.0/24",
            "--ip",
            "10.9.9.9",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"partner_id=P430100001", lines[0])
    match = re.fullmatch(r"key=([0-9a-f]{64})", lines[1])
    assert match
    partner = Partner.objects.get()
    assert partner.key_enc == match.group(1)
    assert partner.scopes == ["settle", "cancel", "batch"]
    assert partner.ip_allowlist == "10.1.2.0/24\n10.9.9.9"


def test_cli_create_reports_unusable_input(tree, capsys):
    assert main(["partner", "create", "某合作方", "--org", "NOPE"]) == 2
    assert "找不到组织代码为 NOPE 的工会" in capsys.readouterr().err
    assert main(["partner", "create", "某合作方", "--org", tree.city_a.code, "--ip", "bad"]) == 2
    assert "不是有效的 IP 地址或网段" in capsys.readouterr().err
    assert not Partner.objects.exists()


def test_cli_create_sm2_partner(tree, capsys):
    _, public = new_sm2_key_pair()
    code = main(
        ["partner", "create", "某医院", "--org", tree.city_a.code, "--sm2-public-key", public]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.splitlines() == ["partner_id=P430100001", "key="]
    assert Partner.objects.get().signature_method == SignatureMethod.SM2


def test_cli_sign_prints_headers_a_server_accepts(tmp_path: Path, capsys, partner, person):
    body = json.dumps(settle_body(person.certno), ensure_ascii=False).encode()
    file = tmp_path / "body.json"
    file.write_bytes(body)
    code = main(
        [
            "partner",
            "sign",
            "--key",
            "00" * 32,
            "--partner-id",
            partner.partner_id,
            "--path",
            SETTLE,
            "--body",
            str(file),
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    headers = dict(line.split(": ", 1) for line in lines)
    assert list(headers) == ["X-Partner-Id", "X-Timestamp", "X-Nonce", "X-Signature"]
    expected = sign_hmac(
        "00" * 32,
        string_to_sign(headers["X-Timestamp"], headers["X-Nonce"], "POST", SETTLE, body),
    )
    assert headers["X-Signature"] == expected
    reply = send(Client(), Signer(partner.partner_id), SETTLE, body, headers=headers)
    assert reply.status == 200


def test_cli_sign_with_sm2(tmp_path: Path, capsys):
    private, public = new_sm2_key_pair()
    file = tmp_path / "body.json"
    file.write_bytes(b"{}")
    argv = ["partner", "sign", "--sm2-private-key", private, "--path", SETTLE, "--body", str(file)]
    assert main([*argv, "--timestamp", "1700000000", "--nonce", "abcdefgh"]) == 0
    headers = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    message = string_to_sign("1700000000", "abcdefgh", "POST", SETTLE, b"{}")
    assert verify_sm2(public, message, headers["X-Signature"])


def test_cli_sign_refuses_bad_arguments(tmp_path: Path, capsys):
    file = tmp_path / "b.json"
    file.write_bytes(b"{}")
    assert main(["partner", "sign", "--key", "xyz", "--path", SETTLE, "--body", str(file)]) == 2
    assert main(["partner", "sign", "--key", "00" * 32, "--path", "x", "--body", str(file)]) == 2
    assert main(["partner", "sign", "--path", SETTLE, "--body", str(file)]) == 2
    missing = str(tmp_path / "missing.json")
    assert main(["partner", "sign", "--key", "00" * 32, "--path", SETTLE, "--body", missing]) == 2
    assert capsys.readouterr().out == ""
