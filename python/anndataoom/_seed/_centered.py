"""``CenteredSparseArray``: an in-memory z-scored sparse matrix, never densified whole.

anndataoom 0.1.8 API, used by omicverse's
``ov.pp.scale(use_implicit_centering=True)`` and ``ov.pp.pca``.

It keeps ``S = X·diag(1/σ)`` (CSR, float32) and ``o = μ/σ`` and represents
``Z = S − 1·oᵀ``.  Slices materialise only the requested rectangle;
products use ``Z·W = S·W − 1·(oᵀW)`` and ``Yᵀ·Z = Yᵀ·S − (Yᵀ1)·oᵀ``.
As in 0.1.8, ``max_value`` clips from above only, and only on
materialisation (a product cannot apply a clip).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["CenteredSparseArray"]


class CenteredSparseArray:
    """Lazy ``(X − mean) / std`` over a sparse ``X``, clipped at ``max_value`` when read.

    Parameters
    ----------
    X
        Sparse matrix ``(n_obs, n_vars)`` (converted to CSR).
    mean, std
        Per-column mean and standard deviation (length ``n_vars``); a zero
        std is treated as 1.
    max_value
        Upper clip applied to materialised values; ``None`` for none.
    """

    # numpy must hand ``Y @ self`` to ``__rmatmul__`` (not densify via ``__array__``)
    __array_ufunc__ = None

    def __init__(self, X, mean, std, max_value: float | None = 10.0):
        if not sp.issparse(X):
            raise TypeError(f"CenteredSparseArray expects a sparse matrix; got {type(X).__name__}")
        X = sp.csr_matrix(X)
        mean = np.asarray(mean, dtype=np.float32).ravel()
        std = np.asarray(std, dtype=np.float32).ravel()
        if mean.shape != (X.shape[1],) or std.shape != mean.shape:
            raise ValueError(f"mean/std must have length {X.shape[1]} (the number of columns); "
                             f"got {mean.shape[0]} and {std.shape[0]}")
        safe = np.where(std > 0, std, np.float32(1)).astype(np.float32)
        inv = (np.float32(1) / safe).astype(np.float32)
        scaled = sp.csr_matrix(X.multiply(inv[None, :]))
        self._x_over_sigma = scaled.astype(np.float32, copy=False)
        self._mu_over_sigma = (mean / safe).astype(np.float32)
        self._mean = mean
        self._std = std
        self._max_value = np.inf if max_value is None else float(max_value)
        self.shape = tuple(X.shape)
        self.dtype = np.dtype(np.float32)

    # -- properties ----------------------------------------------------------

    @property
    def nnz(self) -> int:
        """Stored entries of the sparse part."""
        return int(self._x_over_sigma.nnz)

    @property
    def ndim(self) -> int:
        """Always 2."""
        return 2

    @property
    def has_clip(self) -> bool:
        """Whether materialised values are clipped."""
        return bool(np.isfinite(self._max_value))

    @property
    def T(self) -> _TransposedCentered:
        """Transposed view supporting ``@`` (for SVD solvers)."""
        return _TransposedCentered(self)

    # -- materialisation -----------------------------------------------------

    def _finish(self, block, offset) -> np.ndarray:
        out = block.toarray() if sp.issparse(block) else np.asarray(block)
        out = np.atleast_1d(out).astype(np.float32, copy=True)
        out -= np.asarray(offset, dtype=np.float32)
        if self.has_clip:
            np.minimum(out, np.float32(self._max_value), out=out)
        return out

    def __getitem__(self, key) -> np.ndarray:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        return self._finish(self._x_over_sigma[rows, cols],
                            np.atleast_1d(self._mu_over_sigma[cols]))

    def toarray(self) -> np.ndarray:
        """Return the whole matrix, dense float32 (allocates ``n_obs × n_vars``)."""
        return self._finish(self._x_over_sigma, self._mu_over_sigma)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.toarray()
        return out if dtype is None else out.astype(dtype, copy=False)

    # -- products (unclipped) ------------------------------------------------

    def __matmul__(self, W) -> np.ndarray:
        W = np.asarray(W)
        return self._x_over_sigma @ W - self._mu_over_sigma @ W

    def __rmatmul__(self, Y) -> np.ndarray:
        Y = np.asarray(Y)
        return Y @ self._x_over_sigma - Y.sum(axis=-1, keepdims=True) * self._mu_over_sigma

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        clip = self._max_value if self.has_clip else None
        return (f"CenteredSparseArray(shape={self.shape}, dtype=float32, nnz={self.nnz}, "
                f"max_value={clip})")


class _TransposedCentered:
    """``Zᵀ`` for ``Zᵀ @ Y`` (shape and dtype only otherwise)."""

    def __init__(self, parent: CenteredSparseArray):
        self._parent = parent
        self.shape = (parent.shape[1], parent.shape[0])
        self.dtype = parent.dtype

    def __matmul__(self, Y) -> np.ndarray:
        Y = np.asarray(Y)
        p = self._parent
        out = p._x_over_sigma.T @ Y
        if Y.ndim == 1:
            return out - p._mu_over_sigma * Y.sum()
        return out - p._mu_over_sigma[:, None] * Y.sum(axis=0, keepdims=True)

    @property
    def T(self) -> CenteredSparseArray:
        return self._parent
