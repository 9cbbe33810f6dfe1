"""``backup_url=``: fetch a missing input once, as scanpy's readers do."""

from __future__ import annotations

import os

from anndataoom._oom import AnnDataReadError
from anndataoom._progress import progress_enabled
from anndataoom.io._write import _atomic

__all__ = ["fetch_missing"]

_BLOCK = 1 << 20


def fetch_missing(path: str, backup_url: str | None) -> None:
    """Download ``backup_url`` to ``path`` unless ``path`` exists.

    The bytes go to a temp file next to ``path``, renamed into place when
    complete, so an interrupted download leaves nothing under ``path``.
    """
    if backup_url is None or os.path.exists(path):
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _atomic(os.path.abspath(path), ".download", lambda tmp: _fetch(backup_url, tmp))


def _fetch(url: str, tmp: str) -> None:
    from urllib.request import Request, urlopen

    from tqdm.auto import tqdm

    with urlopen(Request(url, headers={"User-agent": "anndataoom"}), timeout=60) as resp:
        total = resp.headers.get("content-length")
        total = int(total) if total else None
        done = 0
        with open(tmp, "wb") as f, tqdm(total=total, unit="B", unit_scale=True,
                                          unit_divisor=1024, desc=os.path.basename(url),
                                          disable=not progress_enabled()) as bar:
            while block := resp.read(_BLOCK):
                f.write(block)
                done += len(block)
                bar.update(len(block))
    if total is not None and done != total:
        raise AnnDataReadError(f"the download of {url} stopped after {done:,} of {total:,} bytes")
