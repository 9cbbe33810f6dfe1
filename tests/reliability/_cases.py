"""Case bodies run inside the sandbox worker (see ``_sandbox.py``).

Each returns plain JSON data (lists, numbers, strings) for the test to check.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp


def _dense(m) -> np.ndarray:
    return m.toarray() if sp.issparse(m) else np.asarray(m)


def read_x(path: str, key: str = "X") -> dict:
    """Open ``path``, read the whole matrix, its sums and names."""
    import anndataoom as oom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = oom.read(path)
    X = a.X if key == "X" else a.layers[key.split("/", 1)[1]]
    m = X.to_memory()
    d = _dense(m)
    out = {
        "shape": list(X.shape),
        "dtype": str(X.dtype),
        "dense": d.astype(np.float64).tolist(),
        "sum": float(X.sum()),
        "sum0": np.asarray(X.sum(axis=0), dtype=np.float64).tolist(),
        "sum1": np.asarray(X.sum(axis=1), dtype=np.float64).tolist(),
        "nnz": int(X.nnz),
        "obs_names": [str(n) for n in a.obs_names],
        "var_names": [str(n) for n in a.var_names],
    }
    if sp.issparse(m):
        m = m.tocsr()
        out["canonical"] = bool(m.has_sorted_indices) and all(
            len(set(m.indices[m.indptr[i]:m.indptr[i + 1]])) == m.indptr[i + 1] - m.indptr[i]
            for i in range(m.shape[0])
        )
    a.close()
    return out


def open_only(path: str) -> list:
    """``oom.read`` only; the shape."""
    import anndataoom as oom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(oom.read(path).shape)


def _index(spec):
    kind, val = spec
    if kind == "int":
        return int(val)
    if kind == "float":
        return float(val)
    if kind == "none":
        return None
    if kind == "floatarr":
        return np.array(val, dtype=np.float64)
    if kind == "intarr":
        return np.array(val, dtype=np.int64)
    if kind == "boolarr":
        return np.array(val, dtype=bool)
    if kind == "names":
        return list(val)
    if kind == "name":
        return str(val)
    if kind == "slice":
        return slice(*val)
    raise ValueError(kind)


def index(path: str, row_spec, col_spec=None) -> dict:
    """``a[row, col]`` on ours and on anndata in memory: the outcome of each."""
    import anndata as ad

    import anndataoom as oom

    def outcome(obj):
        try:
            key = _index(row_spec) if col_spec is None else (_index(row_spec), _index(col_spec))
            sub = obj[key]
            X = sub.X
            X = X.to_memory() if hasattr(X, "to_memory") else X
            return {"ok": True, "shape": list(sub.shape), "dense": _dense(X).astype(float).tolist(),
                    "obs_names": [str(n) for n in sub.obs_names],
                    "var_names": [str(n) for n in sub.var_names]}
        except Exception as e:  # noqa: BLE001
            return {"ok": False, "type": type(e).__name__,
                    "mro": [c.__name__ for c in type(e).__mro__], "msg": str(e)}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = outcome(oom.read(path))
        theirs = outcome(ad.read_h5ad(path))
    return {"ours": ours, "theirs": theirs}


def big_summary(path: str) -> dict:
    """Shape, nnz and first blocks of a big sparse file (no full pass)."""
    import anndataoom as oom

    a = oom.read(path)
    return {"shape": list(a.shape), "nnz": int(a.X.nnz),
            "blocks": [list(b) for b in a.X.blocks()[:3]]}


def big_rows(path: str, rows: list, cols: list | None = None) -> dict:
    """Rows (and columns) of a big sparse file: values and sums."""
    import anndataoom as oom

    a = oom.read(path)
    sub = a[rows] if cols is None else a[rows, cols]
    return {"dense": sub.X.to_memory().toarray().tolist(),
            "sum0": sub.X.sum(axis=0).tolist(), "sum1": sub.X.sum(axis=1).tolist()}


def _fds(path: str, spill_dir: str | None) -> dict:
    """Open descriptors of this process on ``path`` and in ``spill_dir``."""
    import os

    real = os.path.realpath(path)
    spill = os.path.realpath(spill_dir) if spill_dir else None
    on_file = in_spill = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target == real:
            on_file += 1
        elif spill and target.startswith(spill + "/"):
            in_spill += 1
    return {"file": on_file, "spill": in_spill}


def fd_lifecycle(path: str, spill_dir: str, mode: str) -> list:
    """Descriptors after open+read and after the object is let go by ``mode``."""
    import gc

    import anndataoom as oom

    stages = []
    if mode == "close":
        a = oom.read(path)
        a.X.sum(axis=0)
        a[::3].X.to_memory()
        stages.append(_fds(path, spill_dir))
        a.close()
        gc.collect()
    elif mode == "context":
        with oom.read(path) as a:
            a.X.sum(axis=0)
            stages.append(_fds(path, spill_dir))
    elif mode in ("exception", "keyboardinterrupt"):
        exc = RuntimeError("boom") if mode == "exception" else KeyboardInterrupt()
        try:
            with oom.read(path) as a:
                a.X.sum(axis=0)
                stages.append(_fds(path, spill_dir))
                raise exc
        except (RuntimeError, KeyboardInterrupt):
            pass
    elif mode == "gc":
        a = oom.read(path)
        sub = a[::2, ::2]
        sub.X.to_memory()
        stages.append(_fds(path, spill_dir))
        del a, sub
        gc.collect()
    stages.append(_fds(path, spill_dir))
    return stages


def fuzz_one(path: str) -> int:
    """The fuzz target's body through the bindings: open, read every block
    of X / layers/counts / raw/X, and a scrambled row gather.
    """
    from anndataoom import _oom

    _oom.check_file(path)
    read = 0
    for key in ("X", "layers/counts", "raw/X"):
        try:
            m = _oom.open(path, key)
        except KeyError:
            continue
        for a, b in m.blocks(256)[:256]:
            m.read(a, b)
        n = m.shape[0]
        if n:
            rows = np.array([(i * 7919) % n for i in range(min(n, 64))], dtype=np.int64)
            s = m.subset(rows, None)
            s.read(0, len(rows))
            s.axis_sums()
        read += 1
    return read
