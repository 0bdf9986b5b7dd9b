"""S10: field encryption at rest (AES-256-GCM, key id with the ciphertext, rotation) and the
blind index; a raw database dump holds no plain identifier."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core import serializers
from django.db import connection
from pytest_django.fixtures import Settings as SettingsWrapper

from huzhu.core import crypto
from huzhu.core.crypto import DecryptionError, blind_index, decrypt, encrypt, key_id_of
from huzhu.members.models import Member
from huzhu.members.services import MemberInput, id_number_index, update_member
from tests import factories

CONTEXT = "members.Member.id_number_enc"
NUMBER = "430102197503010033"
PHONE = "13812345678"
ACCOUNT = "6222021234567890128"

KEY_1 = base64.b64encode(b"1" * 32).decode()
KEY_2 = base64.b64encode(b"2" * 32).decode()


@pytest.fixture
def two_keys(settings: SettingsWrapper) -> Iterator[SettingsWrapper]:
    """k1 current, k2 known; the test may switch ``HUZHU_FIELD_KEY_CURRENT``."""
    settings.HUZHU_FIELD_KEYS = f"k1:{KEY_1},k2:{KEY_2}"
    settings.HUZHU_FIELD_KEY_CURRENT = "k1"
    crypto.reset_key_cache()
    yield settings
    crypto.reset_key_cache()


def _use(settings: SettingsWrapper, keys: str, current: str) -> None:
    settings.HUZHU_FIELD_KEYS = keys
    settings.HUZHU_FIELD_KEY_CURRENT = current
    crypto.reset_key_cache()


def test_round_trip_and_fresh_nonce() -> None:
    first, second = encrypt(NUMBER, CONTEXT), encrypt(NUMBER, CONTEXT)
    assert first != second  # a random nonce per value: equal plaintexts do not show
    assert decrypt(first, CONTEXT) == decrypt(second, CONTEXT) == NUMBER
    assert NUMBER.encode() not in first
    assert decrypt(encrypt("", CONTEXT), CONTEXT) == ""
    assert decrypt(encrypt("张伟 ü", CONTEXT), CONTEXT) == "张伟 ü"


@pytest.mark.parametrize("position", [0, 1, 2, 5, 20, -1])
def test_a_tampered_ciphertext_fails(position: int) -> None:
    blob = bytearray(encrypt(NUMBER, CONTEXT))
    blob[position] ^= 0x01
    with pytest.raises(DecryptionError):
        decrypt(bytes(blob), CONTEXT)


def test_truncated_and_empty_ciphertexts_fail() -> None:
    blob = encrypt(NUMBER, CONTEXT)
    for broken in (blob[:-1], blob[:10], b""):
        with pytest.raises(DecryptionError):
            decrypt(broken, CONTEXT)


def test_a_ciphertext_moved_to_another_field_fails() -> None:
    blob = encrypt(NUMBER, CONTEXT)
    with pytest.raises(DecryptionError):
        decrypt(blob, "members.Member.phone_enc")
    with pytest.raises(DecryptionError):
        decrypt(blob, "members.FamilyMember.id_number_enc")


@pytest.mark.django_db
def test_a_ciphertext_copied_into_another_column_fails_to_load() -> None:
    tree = factories.tree()
    member = factories.member(tree.grassroots_1, tree.unit_1, phone=PHONE)
    raw = Member.objects.filter(pk=member.pk).values_list("id_number_enc", flat=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number_enc FROM members_member WHERE id = %s", [member.pk])
        (blob,) = cursor.fetchone()
        cursor.execute(
            "UPDATE members_member SET phone_enc = %s WHERE id = %s", [bytes(blob), member.pk]
        )
    assert raw.first() == member.id_number_enc  # the original column still decrypts
    with pytest.raises(DecryptionError):
        Member.objects.get(pk=member.pk).phone_enc  # noqa: B018


def test_key_rotation(two_keys: SettingsWrapper) -> None:
    old = encrypt(NUMBER, CONTEXT)
    assert key_id_of(old) == "k1"
    _use(two_keys, f"k1:{KEY_1},k2:{KEY_2}", "k2")
    new = encrypt(NUMBER, CONTEXT)
    assert key_id_of(new) == "k2"
    assert decrypt(old, CONTEXT) == decrypt(new, CONTEXT) == NUMBER
    _use(two_keys, f"k2:{KEY_2}", "k2")  # k1 retired: its ciphertexts no longer open
    with pytest.raises(DecryptionError):
        decrypt(old, CONTEXT)
    assert decrypt(new, CONTEXT) == NUMBER


def test_misconfigured_keys_are_refused(settings: SettingsWrapper) -> None:
    try:
        _use(settings, "k1:" + base64.b64encode(b"short").decode(), "k1")
        with pytest.raises(ValueError, match="32 bytes"):
            encrypt(NUMBER, CONTEXT)
        _use(settings, f"k1:{KEY_1}", "k9")
        with pytest.raises(ValueError, match="names no key"):
            encrypt(NUMBER, CONTEXT)
    finally:
        crypto.reset_key_cache()


@pytest.mark.django_db
def test_rotation_with_stored_members(two_keys: SettingsWrapper) -> None:
    tree = factories.tree()
    member = factories.member(tree.grassroots_1, tree.unit_1, phone=PHONE)
    _use(two_keys, f"k1:{KEY_1},k2:{KEY_2}", "k2")
    stored = Member.objects.get(pk=member.pk)
    assert stored.id_number_enc == member.id_number_enc  # old rows still read
    update_member(
        acting_user=factories.staff(tree.grassroots_1, "clerk"),
        member=stored,
        data=MemberInput(
            name="张伟",
            id_number=str(stored.id_number_enc),
            employment_type="contract",
            phone=PHONE,
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id_number_enc, phone_enc FROM members_member WHERE id = %s", [member.pk]
        )
        id_blob, phone_blob = cursor.fetchone()
    assert key_id_of(bytes(id_blob)) == key_id_of(bytes(phone_blob)) == "k2"  # writes use k2


def test_blind_index_is_keyed_deterministic_and_per_context(settings: SettingsWrapper) -> None:
    index = blind_index(NUMBER, "member.id_number")
    assert index == blind_index(NUMBER, "member.id_number")
    assert len(index) == 32 and NUMBER not in index
    assert index != blind_index(NUMBER, "member.phone")
    assert id_number_index(NUMBER.lower()) == id_number_index(f" {NUMBER} ")
    try:
        settings.HUZHU_BLIND_INDEX_KEY = KEY_2
        crypto.reset_key_cache()
        assert blind_index(NUMBER, "member.id_number") != index  # not a plain hash
    finally:
        crypto.reset_key_cache()


def _sensitive(pii: tuple[str, ...]) -> list[bytes]:
    # The plain value, and its hex form (as a database would print a plaintext BLOB).
    return [v.encode() for v in pii] + [v.encode().hex().encode() for v in pii]


@pytest.mark.django_db
def test_a_raw_dump_of_the_database_holds_no_plain_identifier() -> None:
    tree = factories.tree()
    member = factories.member(
        tree.grassroots_1, tree.unit_1, number=NUMBER, phone=PHONE, bank_account=ACCOUNT
    )
    from huzhu.members.services import add_family_member, grant_consent

    add_family_member(
        acting_user=None,
        member=member,
        name="李娜",
        id_number="11010519491231002X",
        relation="parent",
    )
    grant_consent(acting_user=None, member=member)
    if connection.vendor == "sqlite":
        dump = "\n".join(connection.connection.iterdump()).encode()
    else:
        rows = []
        with connection.cursor() as cursor:
            for table in connection.introspection.table_names(cursor):
                cursor.execute(f'SELECT t::text FROM "{table}" t')  # noqa: S608 - catalogue names
                rows += [r[0] for r in cursor.fetchall()]
        dump = "\n".join(rows).encode()
    assert b"430***********0033" in dump and "张伟".encode() in dump  # the dump is real
    for plain in _sensitive((NUMBER, PHONE, ACCOUNT, "11010519491231002X")):
        assert plain not in dump


@pytest.mark.django_db(transaction=True)
def test_the_sqlite_database_file_holds_no_plain_identifier(tmp_path: Path) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the file dump is the SQLite form of this check")
    tree = factories.tree()
    factories.member(tree.grassroots_1, tree.unit_1, number=NUMBER, phone=PHONE)
    connection.ensure_connection()
    target = sqlite3.connect(tmp_path / "copy.sqlite3")
    connection.connection.backup(target)
    target.close()
    data = (tmp_path / "copy.sqlite3").read_bytes()
    assert b"430***********0033" in data
    for plain in _sensitive((NUMBER, PHONE)):
        assert plain not in data


@pytest.mark.django_db
def test_serialisation_never_writes_plain_values() -> None:
    tree = factories.tree()
    member = factories.member(tree.grassroots_1, tree.unit_1, number=NUMBER, phone=PHONE)
    text = serializers.serialize("json", [Member.objects.get(pk=member.pk)])
    assert '"id_number_enc": "<encrypted>"' in text
    assert NUMBER not in text and PHONE not in text
