"""``concat``: lazy row concatenation of several AnnData files.

X and the layers common to every input are stacked *lazily* by the Rust
core (a concatenated source reading row blocks part by part and remapping
columns for the join); nothing is copied to disk or memory.  Everything
else (obs, var, obsm, varm, obsp, uns, ``label``/``keys``/``index_unique``,
``merge``/``uns_merge``) is computed by :func:`anndata.concat` itself on
copies without X, so the result matches anndata exactly.

:func:`install_anndata_hook` routes ``anndata.concat`` (and so
``AnnData.concatenate``) to :func:`concat` when an input is an
:class:`~anndataoom.AnnDataOOM`, so they return the lazy result too.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Collection, Mapping
from typing import Literal

import anndata
import numpy as np
import pandas as pd

from anndataoom import _oom
from anndataoom._core._anndataoom import AnnDataOOM
from anndataoom._core._backed_array import BackedArray

__all__ = ["concat", "install_anndata_hook"]

_SKIP = r".*(names are not unique|Observation names are not unique).*"


def _as_oom(x) -> AnnDataOOM | anndata.AnnData:
    if isinstance(x, (str, os.PathLike)):
        from anndataoom.io._any import open_any

        return open_any(x)
    if not isinstance(x, anndata.AnnData):
        raise TypeError(f"concat expects AnnData objects or paths, got {type(x).__name__}")
    return x


def _original_concat():
    """Anndata's own concat (under the hook installed by :func:`install_anndata_hook`)."""
    return getattr(anndata.concat, "_anndataoom_original", anndata.concat)


def _skeleton(a: anndata.AnnData) -> anndata.AnnData:
    """Return ``a`` without X, layers and raw (in memory; obs/var/obsm/... shared)."""
    return anndata.AnnData(
        X=None, obs=a.obs, var=a.var, uns=dict(a.uns),
        obsm=dict(a.obsm), varm=dict(a.varm), obsp=dict(a.obsp), varp=dict(a.varp),
    )


def _covers(colmap: np.ndarray, n_vars: int) -> bool:
    """Whether ``colmap`` (a part's output column per stored column, -1: dropped) hits every one."""
    seen = np.zeros(n_vars, dtype=bool)
    seen[colmap[colmap >= 0]] = True
    return bool(seen.all())


def _stack(mats: list[BackedArray], colmaps: list[np.ndarray], n_vars: int, fill_value,
           key: str, absent: list[bool] | None = None) -> BackedArray:
    """Stack ``mats`` by rows, columns remapped, into a lazy :class:`BackedArray`.

    A part marked ``absent`` lacks this element: its matrix only gives the row
    count, every cell is ``fill_value``, and it counts in the result's type as
    anndata's stand-in (a float64 sparse matrix, or ``np.full`` of the fill).
    """
    absent = absent or [False] * len(mats)
    present = [m for m, gone in zip(mats, absent, strict=True) if not gone]
    missing = not all(_covers(cm, n_vars) for cm in colmaps)
    sparse = any(m.is_sparse for m in present)
    dtype = np.result_type(*[m.dtype for m in present])
    if any(absent):
        stand_in = np.nan if fill_value is None else fill_value
        dtype = np.result_type(dtype, np.float64 if sparse else np.asarray(stand_in).dtype)
    if sparse:
        # stored explicitly where a part lacks a column, in the type anndata
        # promotes to (e.g. float32 and 7 → float64)
        fill = 0.0 if fill_value is None else float(fill_value)
        if fill != 0.0 and missing:
            dtype = np.promote_types(dtype, np.asarray(fill_value).dtype)
    else:
        fill = np.nan if fill_value is None else float(fill_value)
        if missing and np.isnan(fill):
            dtype = np.result_type(dtype, np.float32 if dtype == np.float32 else np.float64)
    key = f"{key} (concat of {len(mats)})"
    return BackedArray(_oom.concat_matrices([x.matrix for x in mats], colmaps, int(n_vars),
                                            np.dtype(dtype).name, bool(sparse), fill, key))


def _layer_keys(objs: list, join: str) -> list[str]:
    """Return the layers anndata keeps: those of every input, or (outer) of any input."""
    if join == "outer":
        return list(dict.fromkeys(k for o in objs for k in o.layers))
    return [k for k in objs[0].layers if all(k in o.layers for o in objs[1:])]


def _stand_ins(objs: list, vals: list, colmaps: list[np.ndarray], key: str):
    """Give each input without layer ``key`` a matrix of its rows whose columns all drop.

    The core never reads a part that keeps no column; it only counts its rows.
    """
    vals, colmaps = list(vals), list(colmaps)
    for i, o in enumerate(objs):
        if vals[i] is not None:
            continue
        rows = next((m for m in (o.X, *o.layers.values()) if isinstance(m, BackedArray)), None)
        if rows is None:
            raise NotImplementedError(
                f"layer {key!r} is missing from input {i}, which has no lazy matrix to take "
                "its rows from; use join='inner' (which drops the layer)")
        vals[i] = rows
        colmaps[i] = np.full(rows.shape[1], -1, dtype=np.int64)
    return vals, colmaps


def concat(
    adatas: Collection[anndata.AnnData | str | os.PathLike]
    | Mapping[str, anndata.AnnData | str | os.PathLike],
    *,
    axis: Literal[0, "obs"] = 0,
    join: Literal["inner", "outer"] = "inner",
    merge: str | None = None,
    uns_merge: str | None = None,
    label: str | None = None,
    keys: Collection[str] | None = None,
    index_unique: str | None = None,
    fill_value=None,
    pairwise: bool = False,
) -> AnnDataOOM:
    """Concatenate AnnData objects (or ``.h5ad`` paths) by rows, lazily.

    The counterpart of :func:`anndata.concat` for out-of-memory data: X
    and the layers present in every input are not read; the result's X is a
    lazy view that reads each input's rows from its own file.  Inputs can be
    :class:`~anndataoom.AnnDataOOM` objects (subset or transformed ones
    too) or paths, which are opened with :func:`anndataoom.read`.

    Parameters
    ----------
    adatas
        The objects (or paths) to concatenate, or a mapping of key → object,
        whose keys are used as ``keys``.
    axis
        Only ``0`` (observations) is supported.
    join
        ``"inner"``: keep the variables common to all inputs; ``"outer"``:
        the union, with missing values set to ``fill_value`` (by default
        implicit zeros in sparse X, NaN in dense X), as anndata.
    merge
        How to merge var/varm (``None``, ``"same"``, ``"unique"``,
        ``"first"``, ``"only"``), as :func:`anndata.concat`.
    uns_merge
        How to merge uns, as :func:`anndata.concat`.
    label
        Column added to obs holding which input each cell came from.
    keys
        Names of the inputs for ``label`` and ``index_unique``
        (default ``"0"``, ``"1"``, …).
    index_unique
        If given, obs names become ``f"{name}{index_unique}{key}"``.
    fill_value
        Value for missing entries in an outer join (stored explicitly in
        sparse matrices when non-zero, as anndata).
    pairwise
        Keep obsp (block diagonal), as anndata.

    Returns
    -------
    AnnDataOOM
        A lazy object; ``write_h5ad`` streams the concatenated X.  A layer
        missing from some inputs is dropped (inner join) or filled with
        ``fill_value`` for their cells (outer join), as anndata; ``raw`` is concatenated
        (lazily, with the same join) when every input has one, as anndata.

    Examples
    --------
    >>> import anndataoom as oom
    >>> a = oom.concat(["batch1.h5ad", "batch2.h5ad"], label="batch",
    ...                keys=["b1", "b2"], join="outer")  # doctest: +SKIP
    """
    if axis not in (0, "obs"):
        raise NotImplementedError("anndataoom.concat only concatenates observations (axis=0)")
    if join not in ("inner", "outer"):
        raise ValueError(f"join must be 'inner' or 'outer', got {join!r}")
    if isinstance(adatas, Mapping):
        if keys is not None:
            raise TypeError("Cannot specify categories in both mapping keys and using `keys`.")
        keys = list(adatas.keys())
        adatas = list(adatas.values())
    objs = [_as_oom(x) for x in adatas]
    if not objs:
        raise ValueError("No objects to concatenate.")
    if not any(isinstance(o, AnnDataOOM) for o in objs):
        return _original_concat()(objs, axis=0, join=join, merge=merge, uns_merge=uns_merge,
                              label=label, keys=keys, index_unique=index_unique,
                              fill_value=fill_value, pairwise=pairwise)
    has_x = [o.X is not None for o in objs]
    if any(has_x) and not all(has_x):  # anndata refuses this too; dropping X would lose data
        raise NotImplementedError(
            "Some (but not all) of the AnnData's to be concatenated had no .X value: inputs "
            f"{[i for i, h in enumerate(has_x) if not h]} have none. Concatenation is only "
            "implemented for cases where all or none of the AnnData's have .X assigned.")
    lazy = [isinstance(o.X, BackedArray) or o.X is None for o in objs]
    if not all(lazy):
        raise TypeError(
            "anndataoom.concat stacks on-disk matrices; some inputs hold X in memory. "
            "Write them with write_h5ad and pass the paths, or use anndata.concat."
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SKIP)
        meta = _original_concat()([_skeleton(o) for o in objs], axis=0, join=join, merge=merge,
                              uns_merge=uns_merge, label=label, keys=keys,
                              index_unique=index_unique, fill_value=fill_value,
                              pairwise=pairwise)
    var_names = meta.var_names
    colmaps = [np.ascontiguousarray(var_names.get_indexer(o.var_names), dtype=np.int64)
               for o in objs]
    X = None
    if all(has_x):
        X = _stack([o.X for o in objs], colmaps, len(var_names), fill_value, "X")
    layers = {}
    for k in _layer_keys(objs, join):
        vals = [o.layers[k] if k in o.layers else None for o in objs]
        if not all(isinstance(v, BackedArray) for v in vals if v is not None):
            warnings.warn(f"layer {k!r} is in memory in some inputs; not concatenated",
                          stacklevel=2)
            continue
        absent = [v is None for v in vals]
        if any(absent):
            vals, colmaps_k = _stand_ins(objs, vals, colmaps, k)
        else:
            colmaps_k = colmaps
        layers[k] = _stack(vals, colmaps_k, len(var_names), fill_value, f"layers/{k}", absent)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SKIP)
        out = AnnDataOOM(
            X=X, obs=meta.obs, var=meta.var, uns=dict(meta.uns),
            obsm=dict(meta.obsm), varm=dict(meta.varm), obsp=dict(meta.obsp),
            varp=dict(meta.varp), layers=layers, shape=meta.shape,
        )
    raw_parts = [o.raw for o in objs]
    if all(r is not None for r in raw_parts):
        raws = [AnnDataOOM(X=r.X, obs=pd.DataFrame(index=o.obs_names), var=r.var,
                           varm=dict(r.varm or {}))
                for o, r in zip(objs, raw_parts, strict=True) if r is not None]
        r = concat(raws, join=join, label=label, keys=keys, index_unique=index_unique,
                   fill_value=fill_value)
        out.raw = {"X": r.X, "var": r.var, "varm": dict(r.varm)}
    elif any(r is not None for r in raw_parts):
        warnings.warn("Only some AnnData objects have `.raw` attribute, "
                      "not concatenating `.raw` attributes.", UserWarning, stacklevel=2)
    return out


def _all_lazy(objs: list) -> bool:
    return all(isinstance(o, AnnDataOOM) and (o._X is None or isinstance(o._X, BackedArray))
               for o in objs)


def _anndata_concat_hook(original):
    """Wrap :func:`anndata.concat`: AnnDataOOM inputs go to the lazy :func:`concat`."""

    @functools.wraps(original)
    def anndata_concat(adatas, *args, **kwargs):
        if isinstance(adatas, Mapping):
            adatas = dict(adatas)
            objs = list(adatas.values())
        else:
            adatas = objs = list(adatas)
        if not any(isinstance(o, AnnDataOOM) for o in objs):
            return original(adatas, *args, **kwargs)
        if not args and kwargs.get("axis", 0) in (0, "obs") and _all_lazy(objs):
            return concat(adatas, **kwargs)
        # mixed in-memory inputs or axis=1: anndata concatenates; the lazy
        # matrices reach it in memory, sparse kept (see _guard.for_anndata_merge)
        return original(adatas, *args, **kwargs)

    anndata_concat._anndataoom_original = original
    return anndata_concat


def install_anndata_hook() -> None:
    """Route ``anndata.concat`` / ``AnnData.concatenate`` with AnnDataOOM inputs to :func:`concat`.

    Idempotent.  Plain AnnData inputs reach anndata's own function unchanged.
    """
    from anndata._core import merge

    if getattr(merge.concat, "_anndataoom_original", None) is not None:
        return
    hooked = _anndata_concat_hook(merge.concat)
    merge.concat = hooked
    anndata.concat = hooked
