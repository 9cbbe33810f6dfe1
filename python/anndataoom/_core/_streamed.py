"""scipy's read-only matrix methods answered by one streamed pass over row blocks.

``max``/``min``/``getnnz``/``count_nonzero``/``var`` and ``@`` with a dense
vector or matrix, for :class:`~anndataoom.BackedArray`.  Each reads the
view block by block (``iter_blocks``) and combines per-block results, so
memory is one block plus the result.  Result types follow scipy for a
sparse view (``max(axis=0)`` is a ``coo_matrix`` of shape ``(1, n)``) and
numpy for a dense one.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from anndataoom._core._guard import unsupported
from anndataoom._core._lazy import norm_axis

__all__ = ["StreamedReads"]


def _flat(r) -> np.ndarray:
    """Return a per-block axis result (sparse, matrix or array) as a 1-D ndarray."""
    if sp.issparse(r):
        r = r.toarray()
    return np.asarray(r).ravel()


def _dense_operand(other, what: str) -> np.ndarray:
    if sp.issparse(other) or hasattr(other, "matrix"):
        raise unsupported(f"{what} with a sparse or lazy operand",
                          hint="Multiply by a dense numpy vector or matrix.")
    return np.asarray(other)


class StreamedReads:
    """Mixin for a lazy matrix with ``shape``, ``dtype``, ``is_sparse`` and ``iter_blocks()``."""

    def _blocks(self):
        return ((a, b, blk) for a, b, blk in self.iter_blocks() if b > a)

    def _extreme(self, name: str, axis):
        ax = norm_axis(axis)
        n_rows, n_cols = self.shape
        reduced = n_rows * n_cols if ax is None else (n_rows, n_cols)[ax]
        if reduced == 0:
            raise ValueError(f"zero-size array to reduction operation {name}imum which has "
                             "no identity")
        if n_rows * n_cols == 0:  # nothing to compare along a non-empty axis: an empty result
            res = np.empty(0, dtype=self.dtype)
            if not self.is_sparse:
                return res
            return sp.coo_matrix((1, 0) if ax == 0 else (0, 1), dtype=self.dtype)
        pick = np.maximum if name == "max" else np.minimum
        acc, rows = None, np.empty(n_rows, dtype=self.dtype) if ax == 1 else None
        for a, b, blk in self._blocks():
            r = getattr(blk, name)(axis=ax)
            if ax == 1:
                rows[a:b] = _flat(r)
                continue
            r = r if ax is None else _flat(r)
            acc = r if acc is None else pick(acc, r)
        if ax is None:
            return self.dtype.type(acc)
        res = rows if ax == 1 else acc.astype(self.dtype, copy=False)
        if not self.is_sparse:
            return res
        return sp.coo_matrix(res.reshape(1, -1) if ax == 0 else res.reshape(-1, 1))

    def max(self, axis=None, out=None):
        """Largest value overall or per column/row (implicit zeros count, as scipy)."""
        if out is not None:
            raise unsupported("max(out=...)")
        return self._extreme("max", axis)

    def min(self, axis=None, out=None):
        """Smallest value overall or per column/row (implicit zeros count, as scipy)."""
        if out is not None:
            raise unsupported("min(out=...)")
        return self._extreme("min", axis)

    def _counts(self, count, axis):
        ax = norm_axis(axis)
        n_rows, n_cols = self.shape
        if ax is None:
            return sum(int(count(blk, None)) for _, _, blk in self._blocks())
        if ax == 0:
            acc = np.zeros(n_cols, dtype=np.int64)
            for _, _, blk in self._blocks():
                acc += _flat(count(blk, 0)).astype(np.int64)
            return acc
        parts = [_flat(count(blk, 1)) for _, _, blk in self._blocks()]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)

    def getnnz(self, axis=None):
        """Count stored entries overall (int) or per column/row (ndarray), as scipy.

        A dense view counts its non-zero values.
        """
        if self.is_sparse:
            return self._counts(lambda blk, ax: blk.getnnz(axis=ax), axis)
        return self._counts(lambda blk, ax: np.count_nonzero(blk, axis=ax), axis)

    def count_nonzero(self, axis=None):
        """Non-zero values (explicit zeros not counted) overall or per column/row."""
        if self.is_sparse:
            n = self._counts(lambda blk, ax: blk.count_nonzero(axis=ax), axis)
        else:
            n = self._counts(lambda blk, ax: np.count_nonzero(blk, axis=ax), axis)
        return np.int64(n) if norm_axis(axis) is None else n

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        """Variance overall or per column/row, as ``numpy.var`` (``ddof`` = delta dof).

        Sums and sums of squares are accumulated in float64 per block and the
        blocks combined with Chan's pairwise formula.  Result dtype: the
        input's for floating inputs, float64 otherwise (as numpy).
        """
        if out is not None:
            raise unsupported("var(out=...)")
        if keepdims:
            return self._keepdims(self.var(axis, dtype, ddof=ddof), axis)
        ax = norm_axis(axis)
        out_dtype = np.dtype(dtype) if dtype is not None else (
            self.dtype if np.issubdtype(self.dtype, np.floating) else np.dtype(np.float64))
        n_rows, n_cols = self.shape
        if ax == 1:
            res = np.empty(n_rows)
            for a, b, blk in self._blocks():
                res[a:b] = _block_var(blk, 1, n_cols, ddof)
            return res.astype(out_dtype)
        n, mean, m2 = 0, None, None
        for _, _, blk in self._blocks():
            k = blk.shape[0] * (n_cols if ax is None else 1)
            s, sq = _block_sums(blk, ax)
            mb = s / k
            m2b = sq - k * mb * mb
            if mean is None:
                n, mean, m2 = k, mb, m2b
                continue
            delta = mb - mean
            tot = n + k
            mean = mean + delta * (k / tot)
            m2 = m2 + m2b + delta * delta * (n * k / tot)
            n = tot
        size = n_rows * n_cols if ax is None else n_rows
        with np.errstate(invalid="ignore", divide="ignore"):
            if m2 is None:
                res = np.nan if ax is None else np.full(n_cols, np.nan)
            else:
                res = np.maximum(m2, 0) / (size - ddof)
        return out_dtype.type(res) if ax is None else np.asarray(res).astype(out_dtype)

    def __matmul__(self, other):
        """``X @ v`` (1-D, length n_cols) or ``X @ M`` (dense ``(n_cols, k)``), streamed."""
        o = _dense_operand(other, "'@'")
        n_rows, n_cols = self.shape
        if o.ndim not in (1, 2) or o.shape[0] != n_cols:
            raise ValueError(f"matmul: dimension mismatch {self.shape} @ {o.shape}")
        parts = [np.asarray(blk @ o) for _, _, blk in self._blocks()]
        if parts:
            return np.concatenate(parts, axis=0)
        dtype = np.result_type(self.dtype, o.dtype)
        return np.zeros((n_rows, *o.shape[1:]), dtype=dtype)

    def __rmatmul__(self, other):
        """``v @ X`` (1-D, length n_rows) or ``M @ X`` (dense ``(k, n_rows)``), streamed."""
        o = _dense_operand(other, "'@'")
        n_rows, n_cols = self.shape
        if o.ndim not in (1, 2) or o.shape[-1] != n_rows:
            raise ValueError(f"matmul: dimension mismatch {o.shape} @ {self.shape}")
        acc = None
        for a, b, blk in self._blocks():
            r = np.asarray(o[..., a:b] @ blk)
            acc = r if acc is None else acc + r
        if acc is None:
            return np.zeros((*o.shape[:-1], n_cols), dtype=np.result_type(self.dtype, o.dtype))
        return acc

    def dot(self, other):
        """``X @ other`` (see :meth:`__matmul__`)."""
        return self @ other


def _block_sums(blk, ax):
    """Sum and sum of squares (float64) of a block, overall or per column."""
    if sp.issparse(blk):
        d = blk.astype(np.float64)
        return _flat(d.sum(axis=ax)) if ax is not None else d.sum(), (
            _flat(d.multiply(d).sum(axis=ax)) if ax is not None else d.multiply(d).sum())
    d = np.asarray(blk, dtype=np.float64)
    return d.sum(axis=ax), (d * d).sum(axis=ax)


def _block_var(blk, ax: int, n: int, ddof) -> np.ndarray:
    """Per-row variance of a block whose rows are complete (``n`` columns)."""
    if not sp.issparse(blk):
        return np.asarray(blk, dtype=np.float64).var(axis=ax, ddof=ddof)
    s, sq = _block_sums(blk, ax)
    mean = s / n
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.maximum(sq - n * mean * mean, 0) / (n - ddof)
