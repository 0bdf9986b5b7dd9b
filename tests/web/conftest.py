"""Fixtures for the staff UI tests: logged-in clients that passed the real second factor."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from huzhu.orgs.models import User
from huzhu.web.middleware import start_session_clock  # noqa: F401  (documents the session keys)
from tests import factories


def login_verified(client: Client, user: User) -> Client:
    """Log ``user`` in with a confirmed TOTP device recorded in the session, as the OTP step does
    (the full login flow itself is tested in test_auth.py)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="测试验证器", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def login() -> Callable[[User], Client]:
    def make(user: User) -> Client:
        return login_verified(Client(), user)

    return make


@pytest.fixture
def county_clerk(tree: factories.Tree) -> User:
    return factories.staff(tree.county_a1, "clerk", username="county_clerk")


@pytest.fixture
def clerk_client(login: Callable[[User], Client], county_clerk: User) -> Client:
    return login(county_clerk)
