"""S1 password policy: ≥ 12 characters, 3 of 4 classes, not common, no username or organisation
name, not one of the last 5, expiry after 90 days; S2 Argon2id."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.hashers import identify_hasher
from django.utils import timezone

from huzhu.core.errors import InvalidInput
from huzhu.orgs.models import PasswordHistory, User
from huzhu.orgs.passwords import HISTORY_DEPTH
from huzhu.orgs.services import change_password, create_staff_user, password_expired
from tests import factories

GOOD = "Lake-Orchid-2026"


def _create(tree: factories.Tree, password: str, username: str = "zhangwei") -> User:
    return create_staff_user(
        acting_user=None,
        username=username,
        password=password,
        organisation=tree.county_a1,
        roles={"clerk"},
    )


def _messages(exc: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return exc.value.by_field()["password"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Short-1a", "密码长度太短，至少需要12个字符"),
        ("alllowercaseletters", "密码须包含大写字母、小写字母、数字、符号中的至少三类"),
        ("lowercase-and-symbols", "密码须包含大写字母、小写字母、数字、符号中的至少三类"),
        ("123456789012", "密码须包含大写字母、小写字母、数字、符号中的至少三类"),
        ("Password1234", "这个密码太常见了。"),
        ("ZhangWei-2026-ok", "密码不能包含用户名"),
        ("芙蓉区总工会-Abc-2026", "密码不能包含所在组织名称"),
    ],
)
def test_each_rule_rejects_with_a_chinese_message(
    tree: factories.Tree, password: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        _create(tree, password)
    assert message in _messages(caught)
    assert not User.objects.filter(username="zhangwei").exists()


@pytest.mark.django_db
def test_all_failures_are_reported_at_once(tree: factories.Tree) -> None:
    with pytest.raises(InvalidInput) as caught:
        _create(tree, "zhangwei")
    assert _messages(caught) == [
        "密码长度太短，至少需要12个字符",
        "密码须包含大写字母、小写字母、数字、符号中的至少三类",
        "密码不能包含用户名",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "password", [GOOD, "lake orchid 2026 !", "LAKEORCHID#2026", "湖湘Aa2026xyzw"]
)
def test_three_classes_and_twelve_characters_pass(tree: factories.Tree, password: str) -> None:
    user = _create(tree, password)
    assert user.check_password(password)
    assert identify_hasher(user.password).algorithm == "argon2"
    assert PasswordHistory.objects.filter(user=user).count() == 1


def test_production_hasher_is_argon2id() -> None:
    from huzhu.core.hashers import FastArgon2PasswordHasher

    assert settings.PASSWORD_HASHERS in (
        ["django.contrib.auth.hashers.Argon2PasswordHasher"],
        ["huzhu.core.hashers.FastArgon2PasswordHasher"],  # tests only: same algorithm, lower cost
    )
    assert FastArgon2PasswordHasher().encode("x", "saltsaltsalt").startswith("argon2$argon2id$")


@pytest.mark.django_db
def test_none_of_the_last_five_passwords(tree: factories.Tree) -> None:
    passwords = [f"Lake-Orchid-{n:04d}" for n in range(1, 7)]
    user = _create(tree, passwords[0])
    for password in passwords[1:5]:
        change_password(user=user, new_password=password)
    # The current password and the four before it are all refused.
    for old in passwords[:5]:
        with pytest.raises(InvalidInput) as caught:
            change_password(user=user, new_password=old)
        assert _messages(caught) == ["新密码不能与最近5次使用过的密码相同"]
    user.refresh_from_db()
    assert user.check_password(passwords[4])
    change_password(user=user, new_password=passwords[5])
    # passwords[0] is now the sixth most recent: allowed again.
    change_password(user=user, new_password=passwords[0])
    assert user.password_history.count() == HISTORY_DEPTH


@pytest.mark.django_db
def test_failed_change_keeps_password_and_history(tree: factories.Tree) -> None:
    user = _create(tree, GOOD)
    before = (user.password, user.password_changed_at, user.password_history.count())
    with pytest.raises(InvalidInput):
        change_password(user=user, new_password="short")
    user.refresh_from_db()
    assert (user.password, user.password_changed_at, user.password_history.count()) == before


@pytest.mark.django_db
def test_password_expires_after_90_days(tree: factories.Tree) -> None:
    user = _create(tree, GOOD)
    max_age = settings.HUZHU_PASSWORD_MAX_AGE_DAYS
    assert max_age == 90
    assert not password_expired(user, max_age)
    user.password_changed_at = timezone.now() - timedelta(days=90, minutes=-1)
    assert not password_expired(user, max_age)
    user.password_changed_at = timezone.now() - timedelta(days=90, minutes=1)
    assert password_expired(user, max_age)
    change_password(user=user, new_password="Lake-Orchid-2027")
    assert not password_expired(user, max_age)
