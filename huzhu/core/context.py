"""The acting request's context (IP, user) for audit events written deep inside services."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestInfo:
    ip: str = ""
    channel: str = "system"  # web | api | cli | partner | system


current_request: ContextVar[RequestInfo] = ContextVar("current_request", default=RequestInfo())  # noqa: B039 (frozen)
