"""Building batch feed files (CSV and JSON lines) from settle bodies, as a partner exports them."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

from huzhu.claims.intake import SETLINFO_FIELDS


def csv_bytes(
    rows: list[dict[str, Any] | tuple[str, str]], *, columns: list[str] | None = None
) -> bytes:
    """A feed CSV: each row a settle body or ``(setl_id, cancel_time)`` for a cancel."""
    bodies = [r for r in rows if isinstance(r, dict)]
    if columns is None:
        names: list[str] = []
        for body in bodies:
            for key in body["setlinfo"]:
                if key not in names:
                    names.append(key)
        columns = [*names, "diag_codes", "record_type", "cancel_time"]
        if "setl_id" not in columns:
            columns.insert(0, "setl_id")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        if isinstance(row, tuple):
            values = {"setl_id": row[0], "record_type": "cancel", "cancel_time": row[1]}
        else:
            values = {k: v for k, v in row["setlinfo"].items() if k in SETLINFO_FIELDS}
            values.update({k: v for k, v in row["setlinfo"].items() if k not in SETLINFO_FIELDS})
            values["diag_codes"] = ";".join(d["diag_code"] for d in row.get("diseinfo", []))
        writer.writerow([values.get(c, "") for c in columns])
    return out.getvalue().encode("utf-8")


def jsonl_bytes(rows: list[dict[str, Any] | tuple[str, str]]) -> bytes:
    lines = []
    for row in rows:
        if isinstance(row, tuple):
            lines.append(json.dumps({"cancel": {"setl_id": row[0], "cancel_time": row[1]}}))
        else:
            lines.append(json.dumps(row, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8")


def total_of(rows: list[dict[str, Any] | tuple[str, str]]) -> str:
    total = sum(
        (Decimal(str(r["setlinfo"]["medfee_sumamt"])) for r in rows if isinstance(r, dict)),
        Decimal("0"),
    )
    return f"{total:.2f}"
