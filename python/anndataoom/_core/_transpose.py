"""``TransposedArray``: the lazy transpose of a :class:`~anndataoom.BackedArray`.

Nothing is copied: reductions, ``@``, ``multiply`` and ``power`` are
answered by the underlying matrix with the axes swapped (one streamed pass
over its row blocks), and rows of the transpose (columns of the source)
are read by streaming the source's row blocks restricted to those columns.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from anndataoom._core._backed_array import BLOCK_VALUES, BackedArray, _split_key
from anndataoom._core._guard import InMemoryRequiredError, unsupported
from anndataoom._core._index import positions
from anndataoom._core._lazy import LazyMatrix, is_int, norm_axis

__all__ = ["TransposedArray", "write_refused"]


def write_refused() -> InMemoryRequiredError:
    """Return the error for writing a lazy transpose (writers stream the stored rows)."""
    return unsupported("writing a lazily transposed matrix",
                       hint="Write the untransposed object and transpose after reading.")


def _swap(axis):
    ax = norm_axis(axis)
    return None if ax is None else 1 - ax


def _t(r):
    """Transpose a per-axis result of the source (sparse/2-D) into ours; 1-D/scalars as is."""
    return r.T if (sp.issparse(r) or np.ndim(r) == 2) else r


class TransposedArray(LazyMatrix):
    """``X.T`` for a lazy ``X``: shape ``(n_cols, n_rows)``, read lazily.

    Parameters
    ----------
    base
        The :class:`~anndataoom.BackedArray` being transposed (``.T`` gives it back).
    """

    def __init__(self, base: BackedArray):
        self.base = base

    # -- attributes -----------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_cols, n_rows)`` of the source."""
        r, c = self.base.shape
        return c, r

    @property
    def dtype(self) -> np.dtype:
        """The values' dtype."""
        return self.base.dtype

    @property
    def is_sparse(self) -> bool:
        """Whether the source is sparse."""
        return self.base.is_sparse

    @property
    def format(self) -> str:
        """``"csc"`` for a sparse source (the transpose of CSR, as scipy), ``"dense"`` otherwise."""
        return "csc" if self.is_sparse else "dense"

    @property
    def nnz(self) -> int:
        """Stored entries (the source's)."""
        return self.base.nnz

    @property
    def T(self) -> BackedArray:
        """The source matrix."""
        return self.base

    def transpose(self, axes=None, copy: bool = False) -> BackedArray:
        """Return the source matrix (see :attr:`T`)."""
        if axes is not None and tuple(axes) != (1, 0):
            raise ValueError("axes must be None or (1, 0) for a 2-D matrix")
        return self.base

    def copy(self) -> TransposedArray:
        """Return a new lazy transpose over the same (immutable) data."""
        return TransposedArray(self.base.copy())

    def astype(self, dtype, copy: bool = True) -> TransposedArray:
        """Return the same lazy transpose with values cast to ``dtype`` when read."""
        return TransposedArray(self.base.astype(dtype, copy=copy))

    # -- reductions (the source's, axes swapped) -------------------------------

    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        """As :meth:`BackedArray.sum` with the axes swapped."""
        return _t(self.base.sum(_swap(axis), dtype, out, keepdims))

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        """As :meth:`BackedArray.mean` with the axes swapped."""
        return _t(self.base.mean(_swap(axis), dtype, out, keepdims))

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        """As :meth:`BackedArray.var` with the axes swapped."""
        return _t(self.base.var(_swap(axis), dtype, out, ddof, keepdims))

    def max(self, axis=None, out=None):
        """As :meth:`BackedArray.max` with the axes swapped."""
        return _t(self.base.max(_swap(axis), out))

    def min(self, axis=None, out=None):
        """As :meth:`BackedArray.min` with the axes swapped."""
        return _t(self.base.min(_swap(axis), out))

    def getnnz(self, axis=None):
        """As :meth:`BackedArray.getnnz` with the axes swapped."""
        return self.base.getnnz(_swap(axis))

    def count_nonzero(self, axis=None):
        """As :meth:`BackedArray.count_nonzero` with the axes swapped."""
        return self.base.count_nonzero(_swap(axis))

    def __matmul__(self, other):
        """``X.T @ v = v @ X`` and ``X.T @ M = (M.T @ X).T``: one pass over X's rows."""
        o = np.asarray(other) if not sp.issparse(other) else other
        return _t(self.base.__rmatmul__(_t(o)))

    def __rmatmul__(self, other):
        """``v @ X.T = X @ v`` and ``M @ X.T = (X @ M.T).T``: one pass over X's rows."""
        o = np.asarray(other) if not sp.issparse(other) else other
        return _t(self.base.__matmul__(_t(o)))

    def dot(self, other):
        """``self @ other``."""
        return self @ other

    # -- lazy elementwise ops ---------------------------------------------------

    def multiply(self, other) -> TransposedArray:
        """As :meth:`BackedArray.multiply` (a 1-D vector scales our columns = its rows)."""
        o = other if sp.issparse(other) or isinstance(other, LazyMatrix) else np.asarray(other)
        if isinstance(o, np.ndarray) and o.ndim == 1:
            o = o.reshape(1, -1)
        return TransposedArray(self.base.multiply(_t(o)))

    def power(self, n, dtype=None) -> TransposedArray:
        """As :meth:`BackedArray.power`."""
        return TransposedArray(self.base.power(n, dtype))

    # -- reading --------------------------------------------------------------

    def _subset(self, rows, cols) -> TransposedArray:
        return TransposedArray(self.base._subset(cols, rows))

    def _read(self, start: int, end: int):
        """Rows ``start:end`` = source columns, read over the source's row blocks."""
        cols = np.arange(start, end, dtype=np.int64)
        block = self.base._subset(None, cols).to_memory()
        return block.T.tocsr() if sp.issparse(block) else np.ascontiguousarray(block.T)

    def chunked(self, chunk_size: int | None = None, *, prefetch: bool = False):
        """Yield ``(start, end, block)`` over row blocks (each reads all source rows)."""
        n_rows, n_cols = self.shape
        if chunk_size is None:
            chunk_size = max(1, BLOCK_VALUES // max(1, n_cols))
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        for s in range(0, n_rows, int(chunk_size)):
            e = min(n_rows, s + int(chunk_size))
            yield s, e, self._read(s, e)

    def iter_blocks(self, target_values: int = BLOCK_VALUES, *, prefetch: bool = False):
        """Row blocks of about ``target_values`` values (see :meth:`chunked`)."""
        return self.chunked(max(1, int(target_values) // max(1, self.shape[1])))

    def to_memory(self):
        """Load into memory: the transpose of the source's ``to_memory()`` (CSC or ndarray)."""
        return self.base.to_memory().T

    def toarray(self) -> np.ndarray:
        """Return the whole transpose as a dense ``ndarray``."""
        return self.base.toarray().T

    def __getitem__(self, key):
        rk, ck = _split_key(key)
        n_rows, n_cols = self.shape
        rows, cols = positions(rk, n_rows), positions(ck, n_cols)
        sub = self._subset(rows, cols)
        if not (is_int(rk) or is_int(ck)):
            return sub
        block = sub.to_memory()
        if is_int(rk) and is_int(ck):
            return block[0, 0]
        if sp.issparse(block):
            return block.tocsr()
        return block[0, :] if is_int(rk) else block[:, 0]

    def __iter__(self):
        for _, _, block in self.chunked():
            for i in range(block.shape[0]):
                yield block[i]

    def __repr__(self) -> str:
        return f"TransposedArray(of {self.base!r})"
