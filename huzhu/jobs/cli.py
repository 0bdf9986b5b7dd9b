"""A tqdm progress bar on standard error for jobs run from the command line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

from huzhu.jobs.services import Listener


@contextmanager
def tqdm_listener(description: str, *, unit: str = "行") -> Iterator[Listener]:
    bar = tqdm(total=0, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True)
    last_message = [""]

    def listen(done: int, total: int, message: str) -> None:
        if total and bar.total != total:
            bar.total = total
        if message and message != last_message[0]:
            last_message[0] = message
            bar.set_description_str(f"{description}：{message}")
        bar.n = done
        bar.refresh()

    try:
        yield listen
    finally:
        bar.close()
