"""Generate benchmark inputs for ``huzhu adjudicate`` with a fixed seed (never committed).

    python -m bench.gen_settlements OUT_DIR [--rows 1000000] [--members 200000] [--seed 20260101]

Writes ``members.csv`` and ``settlements.csv`` (INTERFACES.md §2 formats): valid GB 11643 ID
numbers; ~10% family members; ~5% hardship members, a third of them with a hardship period that
starts or ends mid-year; a few members covered from mid-year; ~2% cancellations (after their
settlement, same member); some duplicates, unknown members, late claims, med_types outside the
products, and a few invalid rows (bad amounts, impossible sums).
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK = np.array(list("10X98765432"))
_REGIONS = np.array(
    ["430102", "430103", "430104", "430105", "430111", "430121", "430202", "430302", "431002"]
)
_EPOCH = date(1970, 1, 1)


def _day(value: date) -> int:
    return (value - _EPOCH).days


def _ids(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` distinct valid 18-character ID numbers."""
    found: list[str] = []
    seen: set[str] = set()
    while len(found) < count:
        need = int((count - len(found)) * 1.1) + 16
        region = rng.choice(_REGIONS, need)
        birth = np.datetime64("1966-01-01") + rng.integers(0, 365 * 40, need).astype(
            "timedelta64[D]"
        )
        birth_text = np.char.replace(np.datetime_as_string(birth, unit="D"), "-", "")
        sequence = np.char.zfill(rng.integers(0, 1000, need).astype(str), 3)
        first17 = np.char.add(np.char.add(region, birth_text), sequence)
        digits = (
            np.frombuffer("".join(first17.tolist()).encode("ascii"), dtype=np.uint8)
            .reshape(need, 17)
            .astype(np.int64)
            - 48
        )
        check = _CHECK[(digits @ _WEIGHTS) % 11]
        for number in np.char.add(first17, check).tolist():
            if number not in seen:
                seen.add(number)
                found.append(number)
                if len(found) == count:
                    break
    return np.array(found)


def _dates(days: np.ndarray) -> pl.Series:
    return pl.Series(days.astype(np.int32)).cast(pl.Date).cast(pl.String)


def _masked(values: pl.Series, keep: np.ndarray) -> pl.Series:
    return pl.select(pl.when(pl.Series(keep)).then(values)).to_series()


def _yuan(fen: pl.Expr) -> pl.Expr:
    return pl.concat_str(
        [(fen // 100).cast(pl.String), pl.lit("."), (fen % 100).cast(pl.String).str.zfill(2)]
    )


def generate(out_dir: Path, rows: int, members: int, seed: int = 20260101) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    start, end = _day(date(2026, 1, 1)), _day(date(2026, 12, 31))

    # ----- members -----
    certnos = _ids(rng, members)
    family = rng.random(members) < 0.10
    coverage_start = np.where(
        rng.random(members) < 0.03, start + rng.integers(30, 200, members), start
    )
    hardship = rng.random(members) < 0.05
    mid_year = hardship & (rng.random(members) < 0.35)
    hs_start = np.where(
        mid_year & (rng.random(members) < 0.5), start + rng.integers(60, 300, members), start
    )
    hs_end = np.where(mid_year & (hs_start == start), start + rng.integers(60, 300, members), end)
    member_frame = pl.DataFrame(
        {
            "certno": certnos,
            "name": np.full(members, "职工"),
            "member_type": np.where(family, "family", "self"),
            "coverage_start": _dates(coverage_start),
            "coverage_end": _dates(np.full(members, end)),
            # Empty cells are written as nulls: Polars would quote an empty string.
            "hardship_start": _masked(_dates(hs_start), hardship),
            "hardship_end": _masked(_dates(hs_end), hardship),
        }
    )
    # A few open-ended hardship periods (one date empty).
    open_side = hardship & (rng.random(members) < 0.05)
    member_frame = member_frame.with_columns(
        pl.when(pl.Series(open_side))
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.col("hardship_end"))
        .alias("hardship_end")
    )
    members_path = out_dir / "members.csv"
    member_frame.write_csv(members_path, line_terminator="\n")

    # ----- settlements -----
    cancels = int(rows * 0.02)
    settles = rows - cancels
    # Skewed: a minority of members have most stays (so years hold several records).
    who = np.minimum((rng.pareto(1.2, settles) * members / 20).astype(np.int64), members - 1)
    who = rng.permutation(members)[who]
    certno = certnos[who].astype(object)
    unknown = rng.random(settles) < 0.002
    certno[unknown] = "430102199001010012"  # valid number, not a member
    lower = rng.random(settles) < 0.01
    certno[lower] = np.char.lower(certno[lower].astype(str)).astype(object)
    med_type = rng.choice(np.array(["21", "14", "52", "11"]), settles, p=[0.6, 0.25, 0.05, 0.10])
    adm = rng.integers(start - 5, end + 1, settles)
    setl = adm + rng.integers(0, 20, settles)
    late = rng.random(settles) < 0.002
    setl = np.where(late, _day(date(2027, 4, 2)), setl)
    seconds = rng.integers(0, 86400, settles)
    medfee = (rng.lognormal(8.8, 1.1, settles) * 100).astype(np.int64) + 100
    inscp = medfee - (medfee * rng.random(settles) * 0.15).astype(np.int64)
    fund = (inscp * rng.uniform(0.45, 0.8, settles)).astype(np.int64)
    hosp = np.where(rng.random(settles) < 0.05, (inscp - fund) // 10, 0)
    setl_ids = np.char.add("S", np.char.zfill(np.arange(settles).astype(str), 9)).astype(object)
    duplicate = rng.random(settles) < 0.002
    setl_ids[duplicate] = setl_ids[rng.integers(0, settles, int(duplicate.sum()))]
    time_text = (
        pl.DataFrame(
            {"day": _dates(setl), "h": seconds // 3600, "m": seconds // 60 % 60, "s": seconds % 60}
        )
        .select(
            pl.concat_str(
                [
                    pl.col("day"),
                    pl.lit(" "),
                    pl.col("h").cast(pl.String).str.zfill(2),
                    pl.lit(":"),
                    pl.col("m").cast(pl.String).str.zfill(2),
                    pl.lit(":"),
                    pl.col("s").cast(pl.String).str.zfill(2),
                ]
            )
        )
        .to_series()
    )
    settle_frame = (
        pl.DataFrame(
            {
                "setl_id": pl.Series(setl_ids.astype(str)),
                "certno": pl.Series(certno.astype(str)),
                "record_type": np.full(settles, "settle"),
                "med_type": med_type,
                "adm_date": _dates(adm),
                "dscg_date": _dates(np.minimum(setl, adm + 15)),
                "setl_time": time_text,
                "_medfee": medfee,
                "_inscp": inscp,
                "_fund": fund,
                "_hosp": hosp,
            }
        )
        .with_columns(
            medfee_sumamt=_yuan(pl.col("_medfee")),
            inscp_scp_amt=_yuan(pl.col("_inscp")),
            fund_pay_sumamt=_yuan(pl.col("_fund")),
            hosp_part_amt=_yuan(pl.col("_hosp")),
            fulamt_ownpay_amt=_yuan(pl.col("_medfee") - pl.col("_inscp")),
            overlmt_selfpay=pl.lit("0.00"),
            preselfpay_amt=pl.lit("0.00"),
            psn_part_amt=_yuan(pl.col("_medfee") - pl.col("_fund") - pl.col("_hosp")),
            other_reimbursed=pl.lit(None, dtype=pl.String),
            diag_codes=pl.lit("I63.900;I10.x00"),
        )
        .drop("_medfee", "_inscp", "_fund", "_hosp")
    )
    # A few invalid rows: bad money texts and impossible sums.
    invalid = rng.random(settles) < 0.001
    broken = rng.choice(np.array(["-10.00", "1.000", "1e3", ".5", "x"]), settles)
    settle_frame = settle_frame.with_columns(
        pl.when(pl.Series(invalid))
        .then(pl.Series(broken))
        .otherwise(pl.col("hosp_part_amt"))
        .alias("hosp_part_amt")
    )
    # Cancellations: of earlier settlements, same member, a few days later.
    picked = rng.choice(settles, cancels, replace=False)
    cancel_day = _dates(setl[picked] + rng.integers(1, 40, cancels))
    cancel_frame = settle_frame[picked].with_columns(
        record_type=pl.lit("cancel"),
        setl_time=pl.Series(cancel_day) + " 09:30:00",
    )
    frame = pl.concat([settle_frame, cancel_frame])
    frame = frame[rng.permutation(frame.height)]  # arrival order is not processing order
    settlements_path = out_dir / "settlements.csv"
    frame.write_csv(settlements_path, line_terminator="\n")
    return members_path, settlements_path


def main() -> None:
    parser = argparse.ArgumentParser(description="生成基准测试数据（固定随机种子）")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--seed", type=int, default=20260101)
    args = parser.parse_args()
    members = args.members or max(1, args.rows // 5)
    paths = generate(args.out_dir, args.rows, members, args.seed)
    print(*paths, sep="\n")


if __name__ == "__main__":
    main()
