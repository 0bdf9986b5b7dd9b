"""Models of the contributions app. Receipt models live in ``receipt_models`` so that the
payments/invoices part of the app can add its own module beside them."""

from huzhu.contributions import funding_models  # noqa: F401 - co-funding (funding_*.py)
from huzhu.contributions.receipt_models import (
    PayerKind,
    Receipt,
    ReceiptRange,
    ReceiptStatus,
)

__all__ = ["PayerKind", "Receipt", "ReceiptRange", "ReceiptStatus"]
