"""A logging filter that masks ID numbers, mobiles and bank card numbers in every record (S9)."""

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
