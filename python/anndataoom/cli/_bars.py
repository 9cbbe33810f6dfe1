"""Per-pass progress bars for the CLI steps.

A step (``pca``, ``hvg``, …) may stream the matrix several times.  The Rust
core counts rows of the running pass (``_oom.progress()``, reset when a new
call starts); a polling thread turns every pass into its own tqdm bar
(``pca [pass 2]``) with rate and ETA.  Bars appear only once a pass has
started, and only on a terminal unless forced.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from anndataoom import _oom
from anndataoom._progress import progress_enabled

_POLL_SECONDS = 0.1

__all__ = ["pass_bars"]


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
