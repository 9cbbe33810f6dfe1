"""Progress bars for long Rust passes.

The Rust core counts the rows of each pass as blocks finish, in the call
context of the calls made inside ``with _oom.CallContext()`` on this
thread (other threads' calls have their own). While a call runs with the
GIL released, a small thread polls that context and turns every pass into
its own tqdm bar (``pca [pass 2]``) with rate and ETA. Bars appear only once
a pass has started, and only on a terminal unless forced.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from anndataoom import _oom

_POLL_SECONDS = 0.1

__all__ = ["pass_bars", "progress_enabled", "with_pass_bars"]

F = TypeVar("F", bound=Callable[..., Any])


def progress_enabled() -> bool:
    """Whether bars are drawn: ``ANNDATAOOM_PROGRESS=1/0`` overrides a TTY check."""
    forced = os.environ.get("ANNDATAOOM_PROGRESS")
    if forced is not None:
        return forced not in ("", "0", "false", "False")
    return sys.stderr.isatty()


#: Whether a ``pass_bars`` block is open on this thread: it decides for the calls inside.
_open = threading.local()


@contextmanager
def pass_bars(desc: str, enabled: bool | None = None) -> Iterator[None]:
    """Draw one bar per streaming pass made inside the ``with`` block.

    Inside another ``pass_bars`` block (a library step run by the CLI's
    ``run``, whose bars follow ``--progress``), this one does nothing.

    Parameters
    ----------
    desc
        Step name shown before each bar.
    enabled
        ``True``/``False`` force bars on/off; ``None`` shows them only when
        stderr is a terminal (or ``ANNDATAOOM_PROGRESS=1``).
    """
    if getattr(_open, "active", False):
        yield
        return
    _open.active = True
    try:
        if not (progress_enabled() if enabled is None else enabled):
            yield
            return
        from tqdm.auto import tqdm

        with _oom.CallContext() as ctx:
            yield from _bars(desc, ctx, tqdm)
    finally:
        _open.active = False


def with_pass_bars(desc: str) -> Callable[[F], F]:
    """Decorate a library step: its passes get bars named ``desc`` (see :func:`pass_bars`)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def step(*args, **kwargs):
            with pass_bars(desc):
                return fn(*args, **kwargs)

        return step  # type: ignore[return-value]

    return decorate


def _bars(desc: str, ctx: _oom.CallContext, tqdm: Any) -> Iterator[None]:
    # The context's counters add up over its passes: each bar shows what was
    # added since its pass began.
    bar: Any = None
    n_pass, base, last_total = 0, 0, 0

    def update() -> None:
        nonlocal bar, n_pass, base, last_total
        done, total = ctx.progress()
        if total == last_total and bar is None:
            return
        if total != last_total:
            if bar is not None:
                bar.n = bar.total
                bar.close()
            n_pass += 1
            base, last_total = last_total, total
            label = desc if n_pass == 1 else f"{desc} [pass {n_pass}]"
            bar = tqdm(desc=label, total=total - base, unit=" rows", unit_scale=True,
                       leave=False, file=sys.stderr)
        bar.n = max(done - base, 0)
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
