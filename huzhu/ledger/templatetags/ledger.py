"""Money on ledger screens: integer fen shown as yuan with thousands separators."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def yuan(fen: int | None) -> str:
    """123456789 → "1,234,567.89"; 0 → "0.00"; -5 → "-0.05"; None → ""."""
    if fen is None:
        return ""
    value = int(fen)
    sign = "-" if value < 0 else ""
    whole, cents = divmod(abs(value), 100)
    return f"{sign}{whole:,}.{cents:02d}"


@register.filter
def yuan_or_blank(fen: int | None) -> str:
    """A zero amount left blank (the empty side of a debit/credit column)."""
    return yuan(fen) if fen else ""
