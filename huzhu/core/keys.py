"""Key material for demo and test mode.

Production keys come from the environment (settings). Demo mode writes its own random keys once
into ``var/keys.json`` (mode 0600) so data encrypted by one demo run can be read by the next;
tests use ephemeral in-memory keys.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path


def _new_keys() -> dict[str, str]:
    return {
        "secret_key": secrets.token_urlsafe(50),
        "field_keys": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "field_key_current": "k1",
        "blind_index_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "signing_key": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


def load_or_create_demo_keys(var_dir: Path, *, ephemeral: bool = False) -> dict[str, str]:
    if ephemeral:
        return _new_keys()
    path = Path(var_dir) / "keys.json"
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = _new_keys()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(keys, handle)
    return keys
