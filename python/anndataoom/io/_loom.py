"""Loom files opened lazily (:func:`read_loom`).

Loom stores genes × cells dense arrays (``/matrix`` and ``/layers/*``); we
read each as a cells × genes matrix whose row blocks are column ranges of
the stored array, decoded on all cores.  Row and column attributes become
var and obs exactly as :func:`anndata.io.read_loom` builds them (through
loompy, as anndata does; only the attributes are loaded).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import numpy as np

from anndataoom import _oom
from anndataoom._core._anndataoom import AnnDataOOM
from anndataoom._core._backed_array import BackedArray
from anndataoom.io._10x import _open_h5
from anndataoom.io._read import _fspath

__all__ = ["read_loom"]


def _lazy(path: str, key: str) -> BackedArray:
    return BackedArray(_oom.open(path, key, "loom"))


def _layer_key(name: str) -> str:
    return "matrix" if name == "" else f"layers/{name}"


def read_loom(filename: str | os.PathLike, *, sparse: bool = True, cleanup: bool = False,
              X_name: str = "spliced", obs_names: str = "CellID", var_names: str = "Gene",
              dtype: str = "float32",
              obsm_mapping: Mapping[str, Iterable[str]] = MappingProxyType({}),
              varm_mapping: Mapping[str, Iterable[str]] = MappingProxyType({})) -> AnnDataOOM:
    """Open a ``.loom`` file lazily, as :func:`anndata.io.read_loom` reads it.

    X is ``layers/<X_name>`` if present, else ``/matrix`` (then kept as
    layer ``"matrix"``), cast lazily to ``dtype``; every other loom layer is
    a lazy layer.  Column attributes become obs (``obs_names`` as index),
    row attributes var (``var_names`` as index); multi-column attributes and
    ``obsm_mapping``/``varm_mapping`` go to obsm/varm; ``cleanup`` moves
    single-valued columns to ``uns['loom-obs']``/``uns['loom-var']``.

    Parameters
    ----------
    filename
        The ``.loom`` file.
    sparse
        Accepted for compatibility: the matrices stay on disk either way
        (lazy dense-backed matrices; ``to_memory()`` gives numpy arrays).
    cleanup, X_name, obs_names, var_names, dtype, obsm_mapping, varm_mapping
        As :func:`anndata.io.read_loom`.

    Returns
    -------
    A lazy :class:`~anndataoom.AnnDataOOM`.

    Raises
    ------
    FileNotFoundError
        ``filename`` does not exist.
    anndataoom.exceptions.AnnDataReadError
        Not an HDF5 file, or truncated.
    anndataoom.exceptions.AnnDataFormatError
        An HDF5 file with no ``/matrix``, or attributes whose lengths
        disagree with the matrix.
    """
    from anndata._io.read import _fmt_loom_axis_attrs  # the exact obs/var anndata builds
    from loompy import connect

    del sparse  # the data stays on disk whatever the in-memory format would have been
    path = _fspath(filename)
    with _open_h5(path) as f:
        if "matrix" not in f:
            raise _oom.AnnDataFormatError(f"'{path}' has no /matrix: not a loom file")
        names = [""] + (list(f["layers"].keys()) if "layers" in f else [])
    if X_name not in names:
        X_name = ""
    X = _lazy(path, _layer_key(X_name)).astype(np.dtype(dtype))
    layers = {"matrix": _lazy(path, "matrix")} if X_name != "" else {}
    layers.update((k, _lazy(path, _layer_key(k))) for k in names if k != "")
    try:
        with connect(path, "r") as lc:
            col_attrs, row_attrs = dict(lc.col_attrs), dict(lc.row_attrs)
    except (OSError, KeyError, ValueError) as e:
        raise _oom.AnnDataFormatError(f"cannot read the loom attributes of '{path}': {e}") from e
    obs, obsm = _fmt_loom_axis_attrs(col_attrs, obs_names, dict(obsm_mapping))
    var, varm = _fmt_loom_axis_attrs(row_attrs, var_names, dict(varm_mapping))
    uns = {}
    if cleanup:
        for name, df in (("loom-obs", obs), ("loom-var", var)):
            single = {k: df[k].iloc[0] for k in df.columns if len(df[k].unique()) == 1}
            for k in single:
                del df[k]
            if single:
                uns[name] = single
    for what, df, n in (("col", obs, X.shape[0]), ("row", var, X.shape[1])):
        if len(df.columns) and len(df) != n:
            raise _oom.AnnDataFormatError(
                f"'{path}': {what}_attrs have {len(df)} entries but the matrix has {n}"
            )
    return AnnDataOOM(X=X, obs=obs if len(obs.columns) or len(obs) else None,
                      var=var if len(var.columns) or len(var) else None, layers=layers,
                      obsm=obsm or None, varm=varm or None, uns=uns)
