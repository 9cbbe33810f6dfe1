"""Progress bars for long Rust passes.

The Rust core counts rows of the running pass as blocks finish
(``_oom.progress()``, reset when a new call starts). While a call runs with
the GIL released, a small thread polls that counter and turns every pass
into its own tqdm bar (``pca [pass 2]``) with rate and ETA. Bars appear only
once a pass has started, and only on a terminal unless forced.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from anndataoom import _oom

_POLL_SECONDS = 0.1

__all__ = ["pass_bars", "progress_enabled"]


def progress_enabled() -> bool:
    """Whether bars are drawn: ``ANNDATAOOM_PROGRESS=1/0`` overrides a TTY check."""
    forced = os.environ.get("ANNDATAOOM_PROGRESS")
    if forced is not None:
        return forced not in ("", "0", "false", "False")
    return sys.stderr.isatty()


@contextmanager
def pass_bars(desc: str, enabled: bool | None = None) -> Iterator[None]:
    """Draw one bar per streaming pass made inside the ``with`` block.

    Parameters
    ----------
    desc
        Step name shown before each bar.
    enabled
        ``True``/``False`` force bars on/off; ``None`` shows them only when
        stderr is a terminal (or ``ANNDATAOOM_PROGRESS=1``).
    """
    if not (progress_enabled() if enabled is None else enabled):
        yield
        return
    from tqdm.auto import tqdm

    # the counter still shows the last pass of an earlier step until a new one starts
    before = tuple(int(x) for x in _oom.progress())
    bar: Any = None
    n_pass, last_done, last_total = 0, 0, 0

    def update() -> None:
        nonlocal bar, n_pass, last_done, last_total
        done, total = (int(x) for x in _oom.progress())
        if not total or (bar is None and (done, total) == before):
            return
        if bar is None or total != last_total or done < last_done:
            if bar is not None:
                bar.n = last_total
                bar.close()
            n_pass += 1
            label = desc if n_pass == 1 else f"{desc} [pass {n_pass}]"
            bar = tqdm(desc=label, total=total, unit=" rows", unit_scale=True,
                       leave=False, file=sys.stderr)
        last_done, last_total = done, total
        bar.n = done
        bar.refresh()

    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(_POLL_SECONDS):
            update()

    thread = threading.Thread(target=poll, name="anndataoom-cli-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        update()
        if bar is not None:
            bar.close()
