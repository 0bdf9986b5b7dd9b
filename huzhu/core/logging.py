"""Masking of ID numbers, mobiles and bank card numbers in every log record (S9).

Two layers: ``install_masking_record_factory`` masks each record as it is created, so no handler
(including one a deployment adds, or a library's) ever sees the plain value — a request path such
as ``/api/v1/orgs/<an ID number>`` logged by ``django.request`` included; ``MaskPiiFilter`` on the
configured handlers is the second layer, for records made before the factory was installed."""

from __future__ import annotations

import logging
import re

_ID = re.compile(r"(?<![0-9])(\d{3})\d{11}(\d{3}[\dXx])(?![0-9])")
_MOBILE = re.compile(r"(?<![0-9])(1[3-9]\d)\d{4}(\d{4})(?![0-9])")
_CARD = re.compile(r"(?<![0-9])\d{12,26}(\d{4})(?![0-9])")


def mask_text(text: str) -> str:
    text = _ID.sub(lambda m: m.group(1) + "*" * 11 + m.group(2), text)
    text = _CARD.sub(lambda m: "****" + m.group(1), text)
    return _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(2), text)


class MaskPiiFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


_installed = False


def install_masking_record_factory() -> None:
    """Wrap the process's log record factory so every new record carries its message masked.
    Idempotent."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logging call's problem
            return record
        masked = mask_text(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
