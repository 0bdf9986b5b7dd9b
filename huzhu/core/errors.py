"""One error shape for services, the UI and the API.

A service raises ``InvalidInput`` with every field error at once (Chinese messages, keyed by field
name); views show them beside the fields, the API answers 422 with the same list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID = "invalid"
    REQUIRED = "required"
    DUPLICATE = "duplicate"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    CONFLICT = "conflict"
    STATE = "invalid_state"


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str
    code: ErrorCode = ErrorCode.INVALID


@dataclass
class InvalidInput(Exception):
    errors: list[FieldError] = field(default_factory=list)

    def __str__(self) -> str:
        return "；".join(f"{e.field}: {e.message}" for e in self.errors)

    def by_field(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for error in self.errors:
            result.setdefault(error.field, []).append(error.message)
        return result


class ErrorCollector:
    """Collect field errors, then raise them together."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field_name: str, message: str, code: ErrorCode = ErrorCode.INVALID) -> None:
        self.errors.append(FieldError(field_name, message, code))

    def raise_if_any(self) -> None:
        if self.errors:
            raise InvalidInput(list(self.errors))

    def __bool__(self) -> bool:
        return bool(self.errors)


class ConflictError(Exception):
    """The request conflicts with the current state (HTTP 409)."""
