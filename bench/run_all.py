"""Run every benchmark module (``bench/bench_*.py``) in turn: ``python -m bench.run_all``.

Each module's ``main()`` writes its own ``bench/results/<name>.json`` and prints a table. A failing
benchmark does not stop the others; the exit status is 1 when any failed.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def benchmark_modules() -> list[str]:
    return [f"bench.{p.stem}" for p in sorted(BENCH_DIR.glob("bench_*.py"))]


def main(argv: list[str] | None = None) -> int:
    names = benchmark_modules()
    only = set(argv if argv is not None else sys.argv[1:])
    if only:
        names = [n for n in names if n.removeprefix("bench.bench_") in only or n in only]
    failed: list[str] = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        saved_argv, sys.argv = sys.argv, [name]  # each main() sees no arguments: its defaults
        try:
            status = importlib.import_module(name).main()
        except SystemExit as exc:  # a module's main() may parse arguments and exit
            status = exc.code if isinstance(exc.code, int) else 1
        except Exception:
            traceback.print_exc()
            status = 1
        finally:
            sys.argv = saved_argv
        elapsed = time.perf_counter() - started
        print(f"=== {name}: {'ok' if not status else f'failed ({status})'} in {elapsed:.1f} s ===")
        if status:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    print(f"\nresults: {BENCH_DIR / 'results'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
