"""Production settings pass `manage.py check --deploy` with no warnings (S18); SQLite is opened
with WAL, IMMEDIATE transactions and synchronous=FULL (S17)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_check_deploy_has_no_warnings(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "huzhu.settings",
        "HUZHU_VAR_DIR": str(tmp_path),
        "HUZHU_SECRET_KEY": base64.b64encode(os.urandom(48)).decode(),
        "HUZHU_FIELD_KEYS": "k1:" + _key(),
        "HUZHU_FIELD_KEY_CURRENT": "k1",
        "HUZHU_BLIND_INDEX_KEY": _key(),
        "HUZHU_SIGNING_KEY": _key(),
        "HUZHU_ALLOWED_HOSTS": "huzhu.example.org",
        "HUZHU_DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_keys(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "huzhu.settings",
        "HUZHU_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "HUZHU_SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_sqlite_pragmas() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal = cursor.fetchone()[0]
        cursor.execute("PRAGMA synchronous")
        synchronous = cursor.fetchone()[0]
    # The test database is in memory for speed, where WAL is not possible; the configured
    # init_command is what production connections run.
    init = settings.DATABASES["default"]["OPTIONS"]["init_command"]
    assert "journal_mode=WAL" in init and "synchronous=FULL" in init
    assert settings.DATABASES["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert synchronous == 2  # FULL
    assert journal in {"wal", "memory"}


def test_password_hashing_is_argon2id() -> None:
    from huzhu.settings import PASSWORD_HASHERS

    # The test settings use a cheaper Argon2id; production settings use Django's default cost.
    assert PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    assert settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


def test_full_width_digits_are_not_an_id_number() -> None:
    from huzhu.core.ids import is_valid_id_number

    # "４３０１０２１９７５０３０１００３３" in full-width digits: \d would have matched them.
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "430102197503010033")
    assert is_valid_id_number("430102197503010033")
    assert not is_valid_id_number(full_width)
