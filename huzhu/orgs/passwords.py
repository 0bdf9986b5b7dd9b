"""Password policy of S1 (GB/T 22239-2019 8.1.4.1): length via Django's validator, plus these."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError

HISTORY_DEPTH = 5


class CharacterClassValidator:
    """At least three of: upper-case, lower-case, digits, symbols."""

    def validate(self, password: str, user: Any = None) -> None:
        classes = [
            any(c.isupper() for c in password),
            any(c.islower() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
        if sum(classes) < 3:
            raise ValidationError(
                "密码须包含大写字母、小写字母、数字、符号中的至少三类", code="password_classes"
            )

    def get_help_text(self) -> str:
        return "密码须包含大写字母、小写字母、数字、符号中的至少三类。"


class NoPersonalDataValidator:
    """The password must not contain the username or the organisation's name."""

    def validate(self, password: str, user: Any = None) -> None:
        if user is None:
            return
        lowered = password.lower()
        username = (getattr(user, "username", "") or "").lower()
        if username and username in lowered:
            raise ValidationError("密码不能包含用户名", code="password_username")
        organisation = getattr(user, "organisation", None)
        if organisation is not None and organisation.name and organisation.name in password:
            raise ValidationError("密码不能包含所在组织名称", code="password_org")

    def get_help_text(self) -> str:
        return "密码不能包含用户名或所在组织名称。"


class HistoryValidator:
    """Not one of the last five passwords."""

    def validate(self, password: str, user: Any = None) -> None:
        if user is None or getattr(user, "pk", None) is None:
            return
        if user.password and check_password(password, user.password):
            raise ValidationError("新密码不能与最近5次使用过的密码相同", code="password_reused")
        recent = user.password_history.order_by("-created_at")[:HISTORY_DEPTH]
        for entry in recent:
            if check_password(password, entry.password):
                raise ValidationError("新密码不能与最近5次使用过的密码相同", code="password_reused")

    def get_help_text(self) -> str:
        return "新密码不能与最近5次使用过的密码相同。"
