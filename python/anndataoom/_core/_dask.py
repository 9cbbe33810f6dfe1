"""``BackedArray.to_dask``: a dask array whose chunks the Rust reader produces.

The graph is one key holding the view's ``_oom.Matrix`` plus one task per
row chunk that depends on it.  Local schedulers use that matrix as it is; a
``dask.distributed`` worker receives it once, pickled as its plan (the
core's serialised view: source file, selection, transforms), and rebuilds
it in Rust, reusing the files that process already has open.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from anndataoom._core._backed_array import BackedArray, block_from_raw

__all__ = ["CsrChunk", "to_dask", "read_rows", "matrix_token"]


def _axis(axis):
    """Turn dask's tuple of reduction axes into scipy's int or None."""
    if isinstance(axis, tuple):
        return axis[0] if len(axis) == 1 else None
    return axis


class CsrChunk(sp.csr_matrix):
    """A ``csr_matrix`` chunk whose reductions accept numpy's ``keepdims``.

    dask reduces every chunk with ``np.sum(chunk, axis=..., keepdims=True)``
    (likewise ``np.mean``, ``np.max``, ``np.min``), which scipy's sparse
    matrices refuse; here the per-chunk results come back as plain ndarrays
    of numpy's shape.
    """

    @property
    def size(self) -> int:
        """Rows × columns, as numpy: dask's ``max``/``min`` skip a chunk of size 0.

        scipy's ``size`` is the stored count, so a chunk without stored values
        would be dropped from the reduction.
        """
        return self.shape[0] * self.shape[1]

    def _reduce(self, name: str, axis, keepdims: bool, **kw):
        axis = _axis(axis)
        r = getattr(sp.csr_matrix, name)(self, axis=axis, **kw)
        r = r.toarray() if sp.issparse(r) else np.asarray(r)
        if axis is None:
            return r.reshape(1, 1) if keepdims else r[()]
        r = r.ravel()
        return np.expand_dims(r, axis) if keepdims else r

    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        """Sum as numpy (``keepdims`` supported, ndarray results)."""
        return self._reduce("sum", axis, keepdims, dtype=dtype, out=out)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        """Mean as numpy (``keepdims`` supported, ndarray results)."""
        return self._reduce("mean", axis, keepdims, dtype=dtype, out=out)

    def max(self, axis=None, out=None, keepdims=False, **kw):
        """Maximum as numpy (implicit zeros count; ``keepdims`` supported)."""
        return self._reduce("max", axis, keepdims, out=out)

    def min(self, axis=None, out=None, keepdims=False, **kw):
        """Minimum as numpy (implicit zeros count; ``keepdims`` supported)."""
        return self._reduce("min", axis, keepdims, out=out)


def _register_concatenate() -> None:
    """Concatenated chunks stay :class:`CsrChunk` (dask's mean/var combine them, then reduce).

    Registered on first use of :func:`to_dask`, so importing anndataoom does not import dask.
    """
    from dask.array.dispatch import concatenate_lookup

    def concatenate(chunks, axis=0):
        if axis not in (0, 1):
            raise ValueError(f"Can only concatenate sparse chunks for axis in {{0, 1}}, got {axis}")
        stack = sp.vstack if axis == 0 else sp.hstack
        return CsrChunk(stack(chunks, format="csr"))

    concatenate_lookup.register(CsrChunk, concatenate)


def matrix_token(m) -> str:
    """Return a dask token for the lazy matrix ``m``: the digest of its plan.

    A matrix without a plan (parsed into this process's temp files) gets a
    token of its own identity.
    """
    import hashlib
    import uuid

    try:
        return hashlib.blake2b(m.to_plan(), digest_size=16).hexdigest()
    except ValueError:
        return uuid.uuid4().hex


def read_rows(m, start: int, end: int):
    """Rows ``start:end`` of the lazy matrix ``m`` (runs on a worker)."""
    block = block_from_raw(m.read(start, end))
    return CsrChunk(block) if sp.issparse(block) else block


def _row_bounds(x: BackedArray, chunks) -> list[tuple[int, int]]:
    n = x.shape[0]
    if chunks is None:
        bounds = x.blocks()
    elif isinstance(chunks, (int, np.integer)) and not isinstance(chunks, bool):
        if chunks < 1:
            raise ValueError(f"chunks must be >= 1 rows, got {chunks}")
        bounds = [(a, min(n, a + int(chunks))) for a in range(0, n, int(chunks))]
    else:
        raise TypeError(f"chunks must be None or an int number of rows, got {chunks!r}")
    return bounds or [(0, 0)]


def to_dask(x: BackedArray, chunks: int | None = None):
    """See :meth:`BackedArray.to_dask`."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    _register_concatenate()
    token = matrix_token(x.matrix)
    bounds = _row_bounds(x, chunks)
    name = f"anndataoom-read-{tokenize(token, bounds)}"
    matrix_key = f"anndataoom-matrix-{token}"
    graph: dict = {matrix_key: x.matrix}
    for i, (a, b) in enumerate(bounds):
        graph[(name, i, 0)] = (read_rows, matrix_key, a, b)
    hlg = HighLevelGraph.from_collections(name, graph, dependencies=())
    n_cols = x.shape[1]
    meta = (CsrChunk((0, 0), dtype=x.dtype) if x.is_sparse
            else np.empty((0, 0), dtype=x.dtype))
    row_chunks = tuple(b - a for a, b in bounds)
    return da.Array(hlg, name, chunks=(row_chunks, (n_cols,)), dtype=x.dtype, meta=meta)
