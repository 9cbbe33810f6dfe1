"""``BackedRaw``: a frozen, row-aligned snapshot of X and var for ``.raw``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from anndata._core.raw import Raw

from anndataoom._core._backed_array import BackedArray
from anndataoom._core._guard import guard_scanpy
from anndataoom._core._index import normalize_obs_var
from anndataoom._core._layers import as_matrix_value, subset_value
from anndataoom._core._lazy import LazyMatrix

__all__ = ["BackedRaw"]


def _column(X, j: int) -> np.ndarray:
    """Column ``j`` of a lazy or in-memory matrix as a 1-D ndarray."""
    if isinstance(X, BackedArray):
        a = X._subset(None, np.array([j], dtype=np.int64)).to_memory()
    else:
        a = X[:, [j]]
    if hasattr(a, "toarray"):
        a = a.toarray()
    return np.ravel(np.asarray(a))


def _row(X, i: int) -> np.ndarray:
    if isinstance(X, BackedArray):
        a = X._subset(np.array([i], dtype=np.int64), None).to_memory()
    else:
        a = X[[i]]
    if hasattr(a, "toarray"):
        a = a.toarray()
    return np.ravel(np.asarray(a))


def _single_position(names: pd.Index, k, what: str) -> int:
    loc = names.get_loc(k)
    if isinstance(loc, (int, np.integer)):
        return int(loc)
    if isinstance(loc, slice):
        loc = np.arange(len(names))[loc]
    else:
        loc = np.flatnonzero(loc)
    raise ValueError(f"{what} {k!r} is not unique ({len(loc)} matches)")


class BackedRaw(Raw):
    """``.raw`` of an :class:`~anndataoom.AnnDataOOM`.

    Holds a lazy (or in-memory) ``X`` with all raw variables, ``var`` and
    ``varm``.  Rows always follow the parent's ``obs``: subsetting the
    parent's observations subsets raw rows too; subsetting variables leaves
    raw unchanged (as anndata).
    """

    def __init__(self, adata, X, var: pd.DataFrame, varm=None):
        X = as_matrix_value(X, None, "raw.X")
        if X.shape[0] != adata.n_obs:
            raise ValueError(f"raw.X has {X.shape[0]} rows, but n_obs is {adata.n_obs}")
        if len(var) != X.shape[1]:
            raise ValueError(f"raw.var has {len(var)} rows, but raw.X has {X.shape[1]} columns")
        self._adata = adata
        self._n_obs = adata.n_obs
        self._X = X
        self._var = var
        self.varm = None if varm is None else dict(varm)

    @property
    def X(self):
        """The raw matrix (lazy)."""
        if isinstance(self._X, LazyMatrix):
            guard_scanpy("reading adata.raw.X")
        return self._X

    def _rebind(self, adata, rows: np.ndarray | None = None) -> BackedRaw:
        """Return this raw rebound to ``adata``, whose rows are ``rows`` of the current parent."""
        varm = {k: np.copy(v) if isinstance(v, np.ndarray) else v.copy()
                for k, v in self.varm.items()}
        return BackedRaw(adata, subset_value(self._X, rows, None), self._var.copy(), varm)

    def copy(self) -> BackedRaw:
        """Return an independent copy (the lazy matrix itself is immutable and shared)."""
        return self._rebind(self._adata)

    def __getitem__(self, index) -> BackedRaw:
        if isinstance(index, tuple) and len(index) == 2 and isinstance(index[0], AnnData):
            adata, index = index
        else:
            adata = None
        rows, cols = normalize_obs_var(index, self._adata.obs_names, self.var_names)
        if adata is None:
            adata = self._adata if rows is None else self._adata._subset(rows, None)
        var = self._var if cols is None else self._var.iloc[cols]
        varm = {k: (v if cols is None else (v.iloc[cols] if hasattr(v, "iloc") else v[cols]))
                for k, v in self.varm.items()}
        return BackedRaw(adata, subset_value(self._X, rows, cols), var.copy(), varm)

    def obs_vector(self, k: str) -> np.ndarray:
        """Values of raw variable ``k`` for every observation (1-D ndarray)."""
        if k not in self.var_names:
            raise KeyError(f"Could not find key {k!r} in raw.var_names.")
        return _column(self._X, _single_position(self.var_names, k, "raw variable"))

    def var_vector(self, k: str) -> np.ndarray:
        """Raw values of observation ``k`` (or a raw.var column)."""
        in_col, in_idx = k in self._var.columns, k in self.obs_names
        if in_col and in_idx:
            raise ValueError(f"Key {k} could be found in both .obs_names and .var.columns")
        if in_col:
            return self._var[k].values
        if not in_idx:
            raise KeyError(f"Could not find key {k} in .obs_names or .var.columns.")
        return _row(self._X, _single_position(self.obs_names, k, "observation"))

    def to_adata(self):
        """Return a lazy :class:`~anndataoom.AnnDataOOM` of the raw data and the parent's obs."""
        from copy import deepcopy

        from anndataoom._core._anndataoom import AnnDataOOM

        p = self._adata
        return AnnDataOOM(
            X=self._X,
            obs=p.obs.copy(),
            var=self._var.copy(),
            uns=deepcopy(p._uns),
            obsm={k: v.copy() for k, v in p.obsm.items()},
            obsp={k: v.copy() for k, v in p.obsp.items()},
            varm={k: v.copy() for k, v in self.varm.items()},
        )

    def __repr__(self) -> str:
        kind = "lazy" if isinstance(self._X, BackedArray) else "in memory"
        return f"Raw AnnData with n_obs × n_vars = {self.n_obs} × {self.n_vars} ({kind})"

    __str__ = __repr__
