"""Keys for receipts, all derived from ``settings.HUZHU_SIGNING_KEY`` (32 bytes, base64).

HKDF-SHA256 with a distinct ``info`` label per use gives independent keys from the one deployment
secret, so demo and test mode need no extra key material and production needs one variable:

- the check code key (校验码): HMAC-SHA256 over the receipt's code, number, amount and date;
- the Ed25519 private key that signs the XML original; its public key is published at
  ``/receipts/public-key`` and identified by a key id (the first 16 hex digits of the SHA-256 of the
  raw public key), which every signed XML carries.

Rotating ``HUZHU_SIGNING_KEY`` changes both keys: receipts keep the key id they were signed with,
so an old receipt can still be checked against the old public key kept by whoever verifies it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date
from functools import lru_cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

CHECK_CODE_LENGTH = 6
_CHECK_CODE_INFO = b"huzhu/receipt/check-code/v1"
_ED25519_INFO = b"huzhu/receipt/ed25519/v1"


def _master_key() -> bytes:
    raw = base64.b64decode(str(settings.HUZHU_SIGNING_KEY))
    if len(raw) < 32:
        raise ValueError("HUZHU_SIGNING_KEY must be at least 32 bytes (base64)")
    return raw


def _derive(info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(_master_key())


@lru_cache(maxsize=1)
def _check_code_key() -> bytes:
    return _derive(_CHECK_CODE_INFO)


@lru_cache(maxsize=1)
def private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_derive(_ED25519_INFO))


@lru_cache(maxsize=1)
def public_key() -> Ed25519PublicKey:
    return private_key().public_key()


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | None = None) -> str:
    return hashlib.sha256(_raw_public(key or public_key())).hexdigest()[:16]


def public_key_pem() -> bytes:
    return public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def reset_key_cache() -> None:
    """For tests that change ``HUZHU_SIGNING_KEY``."""
    _check_code_key.cache_clear()
    private_key.cache_clear()
    public_key.cache_clear()


def check_code(*, code: str, number: int, total_fen: int, issued_on: date) -> str:
    """The 6-character check code (校验码): upper-case hex of an HMAC over the receipt's identity,
    amount and date. Hex avoids letters that people misread (O/0, I/1) when typing it in."""
    message = f"{code}|{number:010d}|{total_fen}|{issued_on.isoformat()}".encode()
    digest = hmac.new(_check_code_key(), message, hashlib.sha256).hexdigest()
    return digest[:CHECK_CODE_LENGTH].upper()


def check_code_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().upper().encode())
