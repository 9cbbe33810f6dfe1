"""Synthetic files with more than 2^31 stored entries, a few MB on disk.

``X/data`` and ``X/indices`` are chunked datasets longer than 2^31 of which
only the chunks holding the real entries are written: HDF5 reads the others
as the fill value 0, and so does our chunk table (a missing chunk is zeros).
``X/indptr`` is int64.  The first ``n_gap`` rows share the first
``gap`` entries (explicit zeros in column 0); the last ``len(tail)`` rows sit
beyond 2^31 and hold the real values.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd

GAP = 2**31 + 12_345
CHUNK = 1 << 16


def tail_rows(n_vars: int = 50, n_tail: int = 7, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_tail):
        nnz = 0 if k == 2 else int(rng.integers(1, n_vars))
        cols = np.sort(rng.choice(n_vars, size=nnz, replace=False)).astype(np.int32)
        vals = rng.integers(1, 100, size=nnz).astype(np.float32)
        rows.append((cols, vals))
    return rows


def make(path, *, n_gap: int = 1, n_vars: int = 50, n_tail: int = 7, seed: int = 0) -> dict:
    """Write the file; return the expected tail rows as a dense array and sizes."""
    from anndata.io import write_elem

    rows = tail_rows(n_vars, n_tail, seed)
    tail_nnz = sum(len(c) for c, _ in rows)
    total = GAP + tail_nnz
    indptr = np.empty(n_gap + n_tail + 1, dtype=np.int64)
    # The gap split evenly over the first n_gap rows.
    indptr[: n_gap + 1] = np.linspace(0, GAP, n_gap + 1).round().astype(np.int64)
    pos = GAP
    for k, (c, _) in enumerate(rows):
        pos += len(c)
        indptr[n_gap + 1 + k] = pos
    n_obs = n_gap + n_tail
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        g = f.create_group("X")
        g.attrs["encoding-type"] = "csr_matrix"
        g.attrs["encoding-version"] = "0.1.0"
        g.attrs["shape"] = np.array([n_obs, n_vars], dtype=np.int64)
        length = total + 1000  # a little unused room at the end, as writers leave
        data = g.create_dataset("data", shape=(length,), dtype=np.float32, chunks=(CHUNK,),
                                fillvalue=0, compression="gzip")
        indices = g.create_dataset("indices", shape=(length,), dtype=np.int32, chunks=(CHUNK,),
                                   fillvalue=0, compression="gzip")
        if tail_nnz:
            data[GAP:total] = np.concatenate([v for _, v in rows])
            indices[GAP:total] = np.concatenate([c for c, _ in rows])
        g.create_dataset("indptr", data=indptr, chunks=(min(len(indptr), 1 << 16),), compression="gzip")
        obs = pd.DataFrame(index=pd.Index([f"c{i}" for i in range(n_obs)], dtype=object))
        var = pd.DataFrame(index=pd.Index([f"g{j}" for j in range(n_vars)], dtype=object))
        write_elem(f, "obs", obs)
        write_elem(f, "var", var)
    tail = np.zeros((n_tail, n_vars), dtype=np.float32)
    for k, (c, v) in enumerate(rows):
        tail[k, c] = v
    return {"n_obs": n_obs, "n_vars": n_vars, "n_gap": n_gap, "nnz": total, "tail": tail}
