"""Password hashers. Production uses Django's Argon2id hasher unchanged (S2)."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with a tiny cost, for the test suite only (settings/test.py)."""

    time_cost = 1
    memory_cost = 1024
    parallelism = 1
