"""Login, logout, failure and lockout events go to the audit log (S2, S8)."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from huzhu.core.audit import Event, record_event


@receiver(user_logged_in)
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record_event(actor=user, event=Event.LOGIN, obj=user)


@receiver(user_logged_out)
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record_event(actor=user, event=Event.LOGOUT, obj=user)


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kw: Any) -> None:
    username = str(credentials.get("username", ""))[:150]
    record_event(actor=None, actor_username=username, event=Event.LOGIN_FAILED, outcome="failure")


@receiver(user_locked_out)
def _locked_out(sender: Any, request: Any = None, username: str = "", **kw: Any) -> None:
    record_event(actor=None, actor_username=username[:150], event=Event.LOCKOUT, outcome="failure")
