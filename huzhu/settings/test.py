"""Test settings: ephemeral keys; Argon2id with small cost so factories stay fast."""

import os

os.environ.setdefault("HUZHU_TESTING", "1")

from huzhu.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["huzhu.core.hashers.FastArgon2PasswordHasher"]
