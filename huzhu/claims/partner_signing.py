"""Signing of partner requests (INTERFACES.md §3, S14) — pure functions, no database, no Django.

The string to sign is exactly::

    {timestamp}\\n{nonce}\\n{METHOD}\\n{path}\\n{sha256 hex of the raw body}

(UTF-8; ``METHOD`` upper-case; ``path`` without host or query, e.g. ``/api/v1/settlements``; the
body hash is the lower-case hex SHA-256 of the exact bytes sent, ``e3b0c442…`` for an empty body).

- HMAC partners: ``X-Signature`` = lower- or upper-case hex HMAC-SHA256 of that string, keyed with
  the *bytes* of the partner's 64-hex-digit key (``bytes.fromhex(key)``, 32 bytes).
- SM2 partners: ``X-Signature`` = SM3withSM2 (GB/T 32918.2, GM/T 0009 with the default user ID
  ``1234567812345678``) of that string, encoded as 128 hex digits ``r || s`` (each 32 bytes,
  big-endian, zero-padded) — not DER. The partner's public key is the uncompressed point
  ``04 || x || y`` (130 hex digits; the 128 digits without ``04`` are accepted too).

``huzhu partner sign`` uses these functions so operators can build the headers for curl; the
tests use them to sign as a partner would.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from gmssl import sm2

#: The curve of SM2 (GB/T 32918.5): prime p, coefficients a and b, order n, base point G.
_TABLE = sm2.default_ecc_table
_P = int(_TABLE["p"], 16)
_A = int(_TABLE["a"], 16)
_B = int(_TABLE["b"], 16)
_N = int(_TABLE["n"], 16)
_G = _TABLE["g"]

_HEX = re.compile(r"[0-9a-fA-F]+")
HMAC_KEY_BYTES = 32
HMAC_SIGNATURE_LENGTH = 64
SM2_SIGNATURE_LENGTH = 128
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def string_to_sign(timestamp: str, nonce: str, method: str, path: str, body: bytes) -> bytes:
    """The exact bytes both sides sign (module docstring)."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{timestamp}\n{nonce}\n{method.upper()}\n{path}\n{digest}".encode()


def is_hex(text: str, length: int | None = None) -> bool:
    return bool(_HEX.fullmatch(text)) and (length is None or len(text) == length)


# --- HMAC-SHA256 ---------------------------------------------------------------------------------
def new_hmac_key() -> str:
    """A fresh partner key: 32 random bytes as 64 hex digits."""
    return secrets.token_hex(HMAC_KEY_BYTES)


def sign_hmac(key_hex: str, message: bytes) -> str:
    return hmac.new(bytes.fromhex(key_hex), message, hashlib.sha256).hexdigest()


def verify_hmac(key_hex: str, message: bytes, signature: str) -> bool:
    if not is_hex(signature, HMAC_SIGNATURE_LENGTH):
        return False
    expected = sign_hmac(key_hex, message)
    # Constant time: the comparison must not reveal how many leading digits were right.
    return hmac.compare_digest(expected, signature.lower())


# --- SM2 (SM3withSM2) ------------------------------------------------------------------------
def _on_curve(x: int, y: int) -> bool:
    return 0 <= x < _P and 0 <= y < _P and (y * y - (x * x * x + _A * x + _B)) % _P == 0


def normalize_sm2_public_key(text: str) -> str | None:
    """``04 || x || y`` in lower-case hex (130 digits) for a point on the SM2 curve, else None."""
    key = text.strip().lower()
    if len(key) == 130 and key.startswith("04"):
        key = key[2:]
    if not is_hex(key, 128):
        return None
    x, y = int(key[:64], 16), int(key[64:], 16)
    if not _on_curve(x, y):
        return None
    return "04" + key


def _crypt(public_key: str = "", private_key: str = "") -> sm2.CryptSM2:
    crypt = sm2.CryptSM2(private_key=private_key, public_key="")
    # Set after construction: CryptSM2 strips a leading "04" with ``str.lstrip("04")``, which
    # also eats any leading 0s and 4s of x itself.
    crypt.public_key = public_key[2:] if len(public_key) == 130 else public_key
    return crypt


def sm2_public_key_of(private_key_hex: str) -> str:
    """The public key ``04 || x || y`` of a private key (tests and operators' tooling)."""
    d = int(private_key_hex, 16)
    if not 1 <= d < _N - 1:
        raise ValueError("SM2 private key out of range")
    point = _crypt()._kg(d, _G)
    return "04" + point


def new_sm2_key_pair() -> tuple[str, str]:
    """(private key hex, public key ``04 || x || y``) — for tests and demo partners."""
    private = f"{secrets.randbelow(_N - 2) + 1:064x}"
    return private, sm2_public_key_of(private)


def sign_sm2(private_key_hex: str, message: bytes) -> str:
    """SM3withSM2 signature ``r || s`` (128 hex digits). The per-signature random ``k`` comes
    from ``secrets``: gmssl's own default uses ``random.choice``, which must never pick an SM2
    nonce (a predictable k reveals the private key)."""
    crypt = _crypt(sm2_public_key_of(private_key_hex), private_key_hex)
    while True:
        k = f"{secrets.randbelow(_N - 1) + 1:064x}"
        signature = crypt.sign_with_sm3(message, k)
        if signature:
            return str(signature)


def verify_sm2(public_key: str, message: bytes, signature: str) -> bool:
    if not is_hex(signature, SM2_SIGNATURE_LENGTH):
        return False
    r, s = int(signature[:64], 16), int(signature[64:], 16)
    if not (1 <= r < _N and 1 <= s < _N):
        return False
    try:
        return bool(_crypt(public_key).verify_with_sm3(signature.lower(), message))
    except (ValueError, TypeError, IndexError):
        # A degenerate point on the way (the point at infinity) comes back from gmssl as None.
        return False
