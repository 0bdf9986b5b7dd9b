"""Field encryption at rest and blind indexes (S10).

Ciphertext layout: ``b"\x01" + len(kid) + kid + nonce(12) + AES-256-GCM(ciphertext+tag)``. The
associated data binds a ciphertext to its field (``"members.Member.id_number"``), so a value copied
into another column fails to decrypt. Keys are separate from ``SECRET_KEY`` and carry an id, so a
new key can encrypt while old ones still decrypt (rotation: ``huzhu rotate-keys``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import models

_VERSION = 1


class DecryptionError(Exception):
    """A ciphertext was tampered with, truncated, or its key is unknown."""


@lru_cache(maxsize=1)
def _keyring() -> tuple[str, dict[str, bytes]]:
    keys: dict[str, bytes] = {}
    for item in str(settings.HUZHU_FIELD_KEYS).split(","):
        kid, _, material = item.strip().partition(":")
        raw = base64.b64decode(material)
        if len(raw) != 32:
            raise ValueError(f"field key {kid!r} must be 32 bytes (AES-256)")
        keys[kid] = raw
    current = str(settings.HUZHU_FIELD_KEY_CURRENT)
    if current not in keys:
        raise ValueError("HUZHU_FIELD_KEY_CURRENT names no key in HUZHU_FIELD_KEYS")
    return current, keys


@lru_cache(maxsize=1)
def _index_key() -> bytes:
    return base64.b64decode(str(settings.HUZHU_BLIND_INDEX_KEY))


def reset_key_cache() -> None:
    _keyring.cache_clear()
    _index_key.cache_clear()


def encrypt(plaintext: str, context: str) -> bytes:
    kid, keys = _keyring()
    nonce = os.urandom(12)
    kid_bytes = kid.encode()
    sealed = AESGCM(keys[kid]).encrypt(nonce, plaintext.encode(), context.encode())
    return bytes([_VERSION, len(kid_bytes)]) + kid_bytes + nonce + sealed


def decrypt(blob: bytes, context: str) -> str:
    data = bytes(blob)
    try:
        if data[0] != _VERSION:
            raise DecryptionError("unknown ciphertext version")
        klen = data[1]
        kid = data[2 : 2 + klen].decode()
        nonce = data[2 + klen : 14 + klen]
        sealed = data[14 + klen :]
        key = _keyring()[1][kid]
        return AESGCM(key).decrypt(nonce, sealed, context.encode()).decode()
    except (IndexError, KeyError, ValueError, InvalidTag) as exc:  # ValueError: short nonce
        raise DecryptionError("ciphertext cannot be decrypted") from exc


def key_id_of(blob: bytes) -> str:
    data = bytes(blob)
    return data[2 : 2 + data[1]].decode()


def blind_index(value: str, context: str) -> str:
    """HMAC-SHA256 of the normalised value; exact-match search without the plaintext."""
    mac = hmac.new(_index_key(), f"{context}\x00{value}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


class EncryptedTextField(models.BinaryField):
    """A text value stored AES-256-GCM encrypted; Python side sees ``str`` (or None).

    The field's context is ``app_label.Model.field``; it is never searchable — pair it with a
    blind index column for exact lookups and a masked column for lists.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("editable", True)
        super().__init__(*args, **kwargs)

    def context(self) -> str:
        return f"{self.model._meta.label}.{self.name}"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None:
            return None
        return decrypt(bytes(value), self.context())

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return decrypt(bytes(value), self.context())

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = encrypt(value, self.context())
        return super().get_db_prep_value(value, connection, prepared)

    def value_to_string(self, obj: Any) -> str:
        return "<encrypted>"
