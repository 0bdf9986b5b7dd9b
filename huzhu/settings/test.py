"""Test settings: ephemeral keys; Argon2id with small cost so factories stay fast."""

import os

os.environ.setdefault("HUZHU_TESTING", "1")

from huzhu.settings import *  # noqa: F403

PASSWORD_HASHERS = ["huzhu.core.hashers.FastArgon2PasswordHasher"]

TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

# Live-server (browser) tests use their own connections; reusing them would keep the PostgreSQL
# test database busy at teardown.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
