"""``AnnDataOOM``: an :class:`anndata.AnnData` whose X and layers stay on disk."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from copy import deepcopy
from typing import Any, ClassVar

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

from anndataoom._core._backed_array import DEFAULT_CHUNK_SIZE, BackedArray
from anndataoom._core._guard import (
    GuardedUns,
    check_dense_size,
    for_anndata_merge,
    guard_scanpy,
    unsupported,
)
from anndataoom._core._index import normalize_obs_var
from anndataoom._core._layers import BackedLayers, as_matrix_value, subset_value
from anndataoom._core._lazy import LazyMatrix
from anndataoom._core._raw import BackedRaw, _column, _row, _single_position

__all__ = ["AnnDataOOM", "materialize"]

_DUP_NAMES = r".* names are not unique"


def materialize(value):
    """Load a lazy matrix into memory (csr_matrix/ndarray); pass others through."""
    if isinstance(value, LazyMatrix):
        return value.to_memory()
    return value


def _copy_value(v):
    if isinstance(v, LazyMatrix):
        return v
    return v.copy() if hasattr(v, "copy") else deepcopy(v)


def _take(v, idx: np.ndarray | None):
    """Rows ``idx`` of an obsm/varm value (ndarray, sparse, DataFrame)."""
    if idx is None:
        return _copy_value(v)
    if isinstance(v, pd.DataFrame):
        sub = v.iloc[idx].copy()
        # As anndata's DataFrame views of obsm/varm.
        if anndata.settings.remove_unused_categories:
            for i, dtype in enumerate(sub.dtypes):
                if isinstance(dtype, pd.CategoricalDtype):
                    sub.isetitem(i, sub.iloc[:, i].cat.remove_unused_categories())
        return sub
    return v[idx]


def _take2(v, idx: np.ndarray | None):
    """Rows and columns ``idx`` of an obsp/varp value."""
    if idx is None:
        return _copy_value(v)
    if sp.issparse(v):
        return v[idx][:, idx]
    return np.asarray(v)[np.ix_(idx, idx)]


class AnnDataOOM(anndata.AnnData):
    """Out-of-memory AnnData: obs/var/obsm/uns in memory, X and layers lazy.

    A real :class:`anndata.AnnData` subclass (``isinstance`` is True).  ``X``
    is a :class:`~anndataoom.BackedArray` read from disk on demand; ``layers``
    is a :class:`~anndataoom.BackedLayers`; ``raw`` a frozen lazy snapshot.
    Indexing (``adata[rows, cols]``) returns a **new** lazy ``AnnDataOOM``
    (never a view) whose values equal what in-memory anndata gives for the
    same index.  Create one with :func:`anndataoom.read`.

    Parameters
    ----------
    X
        A :class:`BackedArray`, an ``_oom.Matrix``, an in-memory array or None.
    obs, var, uns, obsm, varm, obsp, varp
        As for :class:`anndata.AnnData`.
    layers
        Mapping of name → lazy or in-memory matrix of shape ``(n_obs, n_vars)``.
    raw
        A :class:`BackedRaw`, an AnnData (snapshot of its X/var/varm) or a
        mapping with keys ``X``, ``var`` and optionally ``varm``.
    shape
        ``(n_obs, n_vars)`` when neither X nor obs/var give it.
    """

    _is_oom: ClassVar[bool] = True

    def __init__(
        self,
        X=None,
        obs: pd.DataFrame | None = None,
        var: pd.DataFrame | None = None,
        uns: Mapping[str, Any] | None = None,
        *,
        obsm: Mapping | None = None,
        varm: Mapping | None = None,
        obsp: Mapping | None = None,
        varp: Mapping | None = None,
        layers: Mapping | None = None,
        raw=None,
        shape: tuple[int, int] | None = None,
    ):
        if X is not None:
            X = as_matrix_value(X, None, "X")
            shape = tuple(X.shape)
        self._init_parts(X=X, obs=obs, var=var, uns=uns, obsm=obsm, varm=varm, obsp=obsp,
                         varp=varp, layers=layers, raw=raw, shape=shape)

    def _init_parts(self, *, X, obs, var, uns, obsm, varm, obsp, varp, layers, raw, shape):
        """(Re)initialise every attribute; used by ``__init__`` and in-place subsets."""
        if shape is None and obs is None and var is None:
            shape = (0, 0)
        if shape is not None:
            shape = (int(shape[0]), int(shape[1]))
            for df, n, what in ((obs, shape[0], "obs"), (var, shape[1], "var")):
                if isinstance(df, pd.DataFrame) and len(df) != n:
                    raise ValueError(f"{what} has {len(df)} rows but X has shape {shape}")
        self._closed = False
        self._X = None
        super()._init_as_actual(
            X=None, obs=obs, var=var, uns=None, obsm=obsm, varm=varm,
            obsp=obsp, varp=varp, shape=shape,
        )
        self._uns = GuardedUns(uns if uns is not None else {}, owner=self)
        self._X = None if X is None else as_matrix_value(X, self.shape, "X")
        self.layers = layers
        self._raw = None
        if raw is not None:
            self.raw = raw

    # -- construction helpers -------------------------------------------------

    def _parts(self, rows: np.ndarray | None, cols: np.ndarray | None) -> dict:
        """Everything of ``self`` subset by positions, as independent copies."""
        self._check_open()
        uns = deepcopy(self._uns)
        obs = self.obs.iloc[rows] if rows is not None else self.obs.copy()
        var = self.var.iloc[cols] if cols is not None else self.var.copy()
        if rows is not None or cols is not None:
            if anndata.settings.remove_unused_categories:
                if rows is not None:
                    self._remove_unused_categories(self.obs, obs, uns)
                if cols is not None:
                    self._remove_unused_categories(self.var, var, uns)
        return dict(
            X=None if self._X is None else subset_value(self._X, rows, cols),
            obs=obs,
            var=var,
            uns=uns,
            obsm={k: _take(v, rows) for k, v in self.obsm.items()},
            varm={k: _take(v, cols) for k, v in self.varm.items()},
            obsp={k: _take2(v, rows) for k, v in self.obsp.items()},
            varp={k: _take2(v, cols) for k, v in self.varp.items()},
            layers=self.layers._subset(rows, cols),
            raw=None,
            shape=None,
        )

    def _subset(self, rows: np.ndarray | None, cols: np.ndarray | None) -> AnnDataOOM:
        """Return a new lazy object with rows/cols selected by positions (``None`` = all)."""
        parts = self._parts(rows, cols)
        new = type(self).__new__(type(self))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_DUP_NAMES)
            new._init_parts(**parts)
        if self._raw is not None:
            new._raw = self._raw._rebind(new, rows)
        return new

    def _adopt(self, rows: np.ndarray | None, cols: np.ndarray | None) -> None:
        """Subset ``self`` in place (identity kept)."""
        parts = self._parts(rows, cols)
        raw = self._raw
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_DUP_NAMES)
            self._init_parts(**parts)
        if raw is not None:
            self._raw = raw._rebind(self, rows)

    def _check_open(self) -> None:
        if getattr(self, "_closed", False):
            raise ValueError("this AnnDataOOM has been closed")

    # -- X, layers, raw -------------------------------------------------------

    @property
    def X(self):
        """The data matrix: a lazy :class:`BackedArray` (or an in-memory array if set)."""
        self._check_open()
        if isinstance(self._X, LazyMatrix):
            guard_scanpy("reading adata.X")
            return for_anndata_merge(self._X, "X")
        return self._X

    @X.setter
    def X(self, value) -> None:
        self._check_open()
        self._X = None if value is None else as_matrix_value(value, self.shape, "X")

    @X.deleter
    def X(self) -> None:
        self._X = None

    @property
    def uns(self) -> GuardedUns:
        """Unstructured annotation: a ``dict`` (returned by reference)."""
        return self._uns

    @uns.setter
    def uns(self, value) -> None:
        if not isinstance(value, Mapping):
            raise ValueError("Only mutable mapping types (e.g. dict) are allowed for `.uns`.")
        self._uns = GuardedUns(value, owner=self)

    @uns.deleter
    def uns(self) -> None:
        self._uns = GuardedUns(owner=self)

    def _has_lazy_matrix(self) -> bool:
        """Whether X, a layer or ``raw.X`` is a lazy matrix (scanpy cannot read it)."""
        raw = getattr(self, "_raw", None)
        layers = getattr(self, "_layers", None) or {}
        parts = (getattr(self, "_X", None), None if raw is None else raw.X, *layers.values())
        return any(hasattr(m, "matrix") for m in parts)

    @property
    def layers(self) -> BackedLayers:
        """Layers: name → lazy (never materialised) or in-memory matrix."""
        return self._layers

    @layers.setter
    def layers(self, value) -> None:
        if isinstance(value, BackedLayers):
            value = value._data
        self._layers = BackedLayers(self, value)

    @layers.deleter
    def layers(self) -> None:
        self._layers = BackedLayers(self)

    @property
    def raw(self) -> BackedRaw | None:
        """Frozen snapshot of X (all variables) and var; rows follow obs."""
        return self._raw

    @raw.setter
    def raw(self, value) -> None:
        if value is None:
            self._raw = None
            return
        if isinstance(value, anndata.Raw):
            X, var, varm = value.X, value.var, value.varm
        elif isinstance(value, anndata.AnnData):
            X, var, varm = value.X, value.var, value.varm
        elif isinstance(value, Mapping):
            X, var, varm = value["X"], value.get("var"), value.get("varm")
        else:
            raise ValueError("Can only init raw attribute with an AnnData object.")
        if var is None:
            var = pd.DataFrame(index=pd.RangeIndex(X.shape[1]).astype(str))
        varm = {k: _copy_value(v) for k, v in dict(varm or {}).items()}
        self._raw = BackedRaw(self, _copy_value(X), var.copy(), varm)

    @raw.deleter
    def raw(self) -> None:
        self._raw = None

    @property
    def is_view(self) -> bool:
        """Always False: indexing returns new objects, never views."""
        return False

    @property
    def isbacked(self) -> bool:
        """False: anndata's backed mode (h5py datasets) is not used."""
        return False

    @property
    def path(self) -> str | None:
        """Path of the file X is read from (None if X is in memory)."""
        X = self._X
        return X.path if isinstance(X, BackedArray) else None

    # -- indexing -------------------------------------------------------------

    def __getitem__(self, index) -> AnnDataOOM:
        """Return a new lazy ``AnnDataOOM`` for any anndata index form (never a view)."""
        rows, cols = normalize_obs_var(index, self.obs_names, self.var_names)
        return self._subset(rows, cols)

    def _inplace_subset_obs(self, index) -> None:
        """Keep observations ``index`` in place (obsp subset; raw rows follow)."""
        rows, _ = normalize_obs_var((index, slice(None)), self.obs_names, self.var_names)
        self._adopt(rows, None)

    def _inplace_subset_var(self, index) -> None:
        """Keep variables ``index`` in place (raw unchanged)."""
        _, cols = normalize_obs_var((slice(None), index), self.obs_names, self.var_names)
        self._adopt(None, cols)

    def subset(self, obs_indices=None, var_indices=None, inplace: bool = True):
        """Subset by positions, masks or names; in place or as a new object."""
        o = slice(None) if obs_indices is None else obs_indices
        v = slice(None) if var_indices is None else var_indices
        rows, cols = normalize_obs_var((o, v), self.obs_names, self.var_names)
        if inplace:
            self._adopt(rows, cols)
            return None
        return self._subset(rows, cols)

    # -- vectors and chunks -------------------------------------------------

    def _layer(self, layer: str | None):
        if layer == "X":
            if "X" not in self.layers:
                layer = None
        return self.X if layer is None else self.layers[layer]

    def obs_vector(self, k: str, *, layer: str | None = None) -> np.ndarray:
        """Values of obs column ``k`` or of variable ``k`` (read lazily) per observation."""
        in_col, in_idx = k in self.obs.columns, k in self.var_names
        if in_col and in_idx:
            raise ValueError(f"Key {k} could be found in both .var_names and .obs.columns")
        if in_col:
            return self.obs[k].values
        if not in_idx:
            raise KeyError(f"Could not find key {k} in .var_names or .obs.columns.")
        return _column(self._layer(layer), _single_position(self.var_names, k, "variable"))

    def var_vector(self, k: str, *, layer: str | None = None) -> np.ndarray:
        """Values of var column ``k`` or of observation ``k`` (read lazily) per variable."""
        in_col, in_idx = k in self.var.columns, k in self.obs_names
        if in_col and in_idx:
            raise ValueError(f"Key {k} could be found in both .obs_names and .var.columns")
        if in_col:
            return self.var[k].values
        if not in_idx:
            raise KeyError(f"Could not find key {k} in .obs_names or .var.columns.")
        return _row(self._layer(layer), _single_position(self.obs_names, k, "observation"))

    def chunked_X(self, chunk_size: int | None = None):
        """Yield ``(block, start, end)`` over row blocks of X (anndata's order)."""
        X = self.X
        chunk_size = DEFAULT_CHUNK_SIZE if chunk_size is None else int(chunk_size)
        if isinstance(X, BackedArray):
            for start, end, block in X.chunked(chunk_size):
                yield block, start, end
            return
        n = self.n_obs
        for start in range(0, n, chunk_size):
            end = min(n, start + chunk_size)
            yield X[start:end], start, end

    def to_df(self, layer: str | None = None) -> pd.DataFrame:
        """X (or a layer) as a dense DataFrame.

        Loads the matrix into memory on purpose; refused with
        :class:`~anndataoom.InMemoryRequiredError` above
        ``ANNDATAOOM_MAX_DENSE_BYTES``.
        """
        m = self._layer(layer)
        if m is None:
            raise ValueError("X is None, cannot convert to dataframe.")
        check_dense_size(m.shape, m.dtype, "a dense DataFrame (to_df)")
        m = materialize(m)
        if sp.issparse(m):
            m = m.toarray()
        return pd.DataFrame(m, index=self.obs_names, columns=self.var_names)

    # -- transpose ------------------------------------------------------------

    def transpose(self) -> AnnDataOOM:
        """Transposed object (lazy): X and layers transposed lazily, obs ↔ var.

        As :meth:`anndata.AnnData.transpose`: obsm ↔ varm, obsp ↔ varp, uns
        shared, ``raw`` ignored.  ``.T`` of the result gives back the original
        orientation.
        """
        self._check_open()
        return AnnDataOOM(
            X=None if self._X is None else self._X.T,
            obs=self.var.copy(), var=self.obs.copy(), uns=self._uns,
            obsm=dict(self.varm), varm=dict(self.obsm), obsp=dict(self.varp),
            varp=dict(self.obsp), layers={k: v.T for k, v in self.layers.items()},
        )

    T = property(transpose)

    def _check_writable(self) -> None:
        from anndataoom._core._transpose import TransposedArray, write_refused

        if any(isinstance(v, TransposedArray) for v in (self._X, *self.layers.values())):
            raise write_refused()

    # -- copies ---------------------------------------------------------------

    def copy(self, filename: str | os.PathLike | None = None) -> AnnDataOOM:
        """Return an independent lazy copy (or, with ``filename``, write there and re-read)."""
        if filename is not None:
            from anndataoom.io import read_h5ad

            self.write_h5ad(filename)
            return read_h5ad(filename)
        return self._subset(None, None)

    def __copy__(self) -> AnnDataOOM:
        return self.copy()

    def __deepcopy__(self, memo) -> AnnDataOOM:
        return self.copy()

    def to_memory(self, *, copy: bool = True) -> anndata.AnnData:
        """Return a plain in-memory :class:`anndata.AnnData` (X, layers and raw materialised)."""
        self._check_open()
        raw = None
        if self._raw is not None:
            raw = {"X": materialize(self._raw.X), "var": self._raw.var.copy(),
                   "varm": {k: _copy_value(v) for k, v in self._raw.varm.items()}}
        return anndata.AnnData(
            X=materialize(self._X),
            obs=self.obs.copy(),
            var=self.var.copy(),
            uns=deepcopy(self._uns),
            obsm={k: _copy_value(v) for k, v in self.obsm.items()},
            varm={k: _copy_value(v) for k, v in self.varm.items()},
            obsp={k: _copy_value(v) for k, v in self.obsp.items()},
            varp={k: _copy_value(v) for k, v in self.varp.items()},
            layers={k: _copy_value(materialize(v)) for k, v in self.layers.items()},
            raw=raw,
        )

    def to_adata(self) -> anndata.AnnData:
        """Alias of :meth:`to_memory` (anndataoom 0.1.8 name)."""
        return self.to_memory()

    # -- file handling --------------------------------------------------------

    def close(self) -> None:
        """Drop this object's references to the file (objects derived from it stay usable)."""
        self._X = None
        self._layers = BackedLayers(self)
        self._raw = None
        self._closed = True

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return getattr(self, "_closed", False)

    def __enter__(self) -> AnnDataOOM:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write_h5ad(self, filename, compression: str | None = None, compression_opts=None,
                   *, convert_strings_to_categoricals: bool = True, as_dense=()) -> None:
        """Write to ``filename`` streaming X and layers block by block (atomic).

        Sparse stays sparse (CSR; a CSC source is written as CSR), lazy
        transforms are applied, obs/var/obsm/varm/obsp/varp/uns/raw are
        written with anndata's encoders.  The file appears at ``filename``
        only once complete.  Writing over the file being read raises
        ``ValueError``.
        """
        from anndataoom.io import write_h5ad

        if as_dense:
            raise NotImplementedError("as_dense is not supported by AnnDataOOM.write_h5ad")
        write_h5ad(self, filename, compression=compression, compression_opts=compression_opts,
                   convert_strings_to_categoricals=convert_strings_to_categoricals)

    write = write_h5ad

    def write_loom(self, filename, write_obsm_varm: bool = False) -> None:
        """Refused: loompy writes X from memory (checked before it creates the file)."""
        raise unsupported("writing a .loom file (loompy takes X in memory)",
                          hint="Write .h5ad or .zarr, or call adata.to_memory().write_loom(path).")

    @property
    def filename(self):
        """Always ``None``: X is on disk already, but not in anndata's backed mode."""
        return None

    @filename.setter
    def filename(self, filename) -> None:
        raise NotImplementedError(
            "setting .filename switches anndata to its backed mode, which AnnDataOOM does not "
            "use (X stays on disk already); to save the object, call adata.write_h5ad(path)")

    def write_zarr(self, store, chunks=None, *, zarr_format: int | None = None,
                   shards: int | None = None, convert_strings_to_categoricals: bool = True) -> None:
        """Write to the Zarr store ``store`` (v2 or v3), streaming X and layers (atomic).

        See :func:`anndataoom.io.write_zarr`; ``chunks`` (anndata's argument
        for dense X chunk shapes) is not supported: give ``chunk_size`` to
        :func:`~anndataoom.io.write_zarr` instead.
        """
        from anndataoom.io import write_zarr

        if chunks is not None:
            raise NotImplementedError(
                "chunks= is not supported by AnnDataOOM.write_zarr; "
                "use anndataoom.io.write_zarr(adata, store, chunk_size=...)"
            )
        write_zarr(self, store, zarr_format=zarr_format, shards=shards,
                   convert_strings_to_categoricals=convert_strings_to_categoricals)

    # -- keys (without anndata's deprecation warnings) ------------------------

    def obs_keys(self) -> list[str]:
        """Columns of obs."""
        return self._obs.keys().tolist()

    def var_keys(self) -> list[str]:
        """Columns of var."""
        return self._var.keys().tolist()

    def obsm_keys(self) -> list[str]:
        """Keys of obsm."""
        return list(self.obsm.keys())

    def varm_keys(self) -> list[str]:
        """Keys of varm."""
        return list(self.varm.keys())

    def uns_keys(self) -> list[str]:
        """Sorted keys of uns."""
        return sorted(self._uns.keys())

    # -- display --------------------------------------------------------------

    def __repr__(self) -> str:
        from anndataoom._core._repr import text_repr

        return text_repr(self)

    def _repr_html_(self) -> str:
        from anndataoom._core._repr import html_repr

        return html_repr(self)

    def __sizeof__(self, *, show_stratified: bool = False, with_disk: bool = False) -> int:
        size = object.__sizeof__(self)
        for df in (self._obs, self._var):
            size += int(df.memory_usage(index=True, deep=True).sum())
        for m in (self.obsm, self.varm, self.obsp, self.varp):
            for v in m.values():
                size += int(getattr(v, "nbytes", 0) or 0)
        return size

    def __getstate__(self):
        raise TypeError("AnnDataOOM objects cannot be pickled; write them with write_h5ad")
