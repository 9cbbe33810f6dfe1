"""Progress bars for long Rust passes.

The Rust core counts rows as blocks finish; while a call runs with the GIL
released, a small thread polls that counter and draws a tqdm bar with rate
and ETA. Bars are shown only on a terminal (or when forced).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from anndataoom import _oom

_POLL_SECONDS = 0.1


def progress_enabled() -> bool:
    """Whether bars are drawn: ``ANNDATAOOM_PROGRESS=1/0`` overrides a TTY check."""
    forced = os.environ.get("ANNDATAOOM_PROGRESS")
    if forced is not None:
        return forced not in ("", "0", "false", "False")
    return sys.stderr.isatty()


@contextmanager
def progress_bar(desc: str, enabled: bool | None = None) -> Iterator[None]:
    """Show a bar for the Rust calls made inside the ``with`` block."""
    if not (progress_enabled() if enabled is None else enabled):
        yield
        return
    from tqdm.auto import tqdm

    bar = tqdm(desc=desc, unit=" rows", unit_scale=True, leave=False, file=sys.stderr)
    stop = threading.Event()

    def update() -> None:
        done, total = _oom.progress()
        if total:
            bar.total = total
        bar.n = done
        bar.refresh()

    def poll() -> None:
        while not stop.wait(_POLL_SECONDS):
            update()

    thread = threading.Thread(target=poll, name="anndataoom-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        update()
        bar.close()
