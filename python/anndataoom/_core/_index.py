"""Index normalisation: every anndata index form → positional int64 arrays.

anndata's own ``_normalize_indices`` resolves names, bool masks (with a
length check), pandas objects and slices; this module turns its output into
non-negative ``int64`` positions (or ``None`` for "everything, in order"),
raising :class:`IndexError` for out-of-range positions as numpy does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata._core.index import _normalize_indices

__all__ = ["normalize_obs_var", "positions", "is_full"]


def positions(idx, n: int) -> np.ndarray | None:
    """Positions selected by one normalised 1-D index on an axis of length ``n``.

    Returns ``None`` when ``idx`` selects every position in order (a no-op).
    A single integer gives a length-1 array (anndata keeps the axis).
    """
    if isinstance(idx, slice):
        if idx.start is None and idx.stop is None and idx.step in (None, 1):
            return None
        start, stop, step = idx.indices(n)
        pos = np.arange(start, stop, step, dtype=np.int64)
        if step == 1 and len(pos) == n:
            return None
        return pos
    if isinstance(idx, (int, np.integer)) and not isinstance(idx, (bool, np.bool_)):
        i = int(idx)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range for axis of length {n}")
        return np.array([i + n if i < 0 else i], dtype=np.int64)
    if isinstance(idx, (pd.Index, pd.Series)):
        idx = idx.to_numpy()
    arr = np.asarray(idx)
    if arr.ndim != 1:
        arr = arr.ravel()
    if arr.dtype == np.bool_:
        if arr.shape[0] != n:
            raise IndexError(
                f"boolean index has length {arr.shape[0]} but the axis has length {n}"
            )
        return np.flatnonzero(arr).astype(np.int64, copy=False)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if np.issubdtype(arr.dtype, np.floating):
        as_int = arr.astype(np.int64)
        if np.any(as_int != arr):
            raise IndexError(f"indexer has non-integer floating point values: {arr[:5]!r}")
        arr = as_int
    if not np.issubdtype(arr.dtype, np.integer):
        raise IndexError(f"cannot index with an array of dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < -n or hi >= n:
        bad = lo if lo < -n else hi
        raise IndexError(f"index {bad} is out of range for axis of length {n}")
    if lo < 0:
        arr = np.where(arr < 0, arr + n, arr)
    return arr


def is_full(pos: np.ndarray | None, n: int) -> bool:
    """Return True if ``pos`` selects every position of an axis of length ``n`` in order."""
    if pos is None:
        return True
    return len(pos) == n and (n == 0 or bool(np.all(pos == np.arange(n))))


def normalize_obs_var(index, obs_names: pd.Index, var_names: pd.Index):
    """Resolve an AnnData-style index into ``(rows, cols)`` positions (or ``None``)."""
    if isinstance(index, pd.Series) and index.dtype == bool:
        index = index.to_numpy()
    if isinstance(index, tuple):
        index = tuple(i.to_numpy() if isinstance(i, pd.Series) and i.dtype == bool else i
                      for i in index)
        if len(index) > 2:
            raise IndexError(f"AnnData can only be indexed along 2 axes, got {len(index)}")
    oidx, vidx = _normalize_indices(index, obs_names, var_names)
    return positions(oidx, len(obs_names)), positions(vidx, len(var_names))
