"""Cell Ranger's ``.h5`` matrices opened lazily (:func:`read_10x_h5`).

Cell Ranger stores a genes × cells CSC matrix; read as is, its column
pointers are the row pointers of our cells × genes CSR, so X is opened in
place with no conversion and no temp file.  obs and var are built exactly
as :func:`scanpy.read_10x_h5` builds them.
"""

from __future__ import annotations

import os
import warnings

import anndata
import h5py
import numpy as np
import scipy.sparse as sp

from anndataoom import _oom
from anndataoom._core._anndataoom import AnnDataOOM
from anndataoom._core._backed_array import BackedArray
from anndataoom.io._download import fetch_missing
from anndataoom.io._read import _fspath, open_ro

__all__ = ["read_10x_h5"]

#: The matrix itself, left on disk.
_MATRIX_KEYS = ("data", "indices", "indptr")

#: features/ datasets that become something else than a var column of the same name.
_FEATURE_SKIP = ("name", "feature_type", "id", "gene_id", "_all_tag_keys")


def _open_h5(path: str) -> h5py.File:
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: '{path}'")
    if os.path.isdir(path):
        raise _oom.AnnDataReadError(f"'{path}' is a directory, not a Cell Ranger .h5 file")
    try:
        return open_ro(path)
    except OSError as e:
        raise _oom.AnnDataReadError(
            f"cannot read '{path}' as HDF5 (truncated or not HDF5?): {e}"
        ) from e


def _small_datasets(group: h5py.Group, out: dict) -> dict:
    """Every dataset under ``group`` but the matrix, by name (as scanpy collects them)."""
    for k, v in group.items():
        if isinstance(v, h5py.Dataset):
            if k not in _MATRIX_KEYS:
                out[k] = v[()]
        else:
            _small_datasets(v, out)
    return out


def _v3_obs_var(f: h5py.File) -> tuple[dict, dict]:
    d = _small_datasets(f["matrix"], {})
    obs = {"obs_names": d["barcodes"].astype(str)}
    var = {"var_names": d["name"].astype(str)}
    if "gene_id" not in d:
        var["gene_ids"] = d["id"].astype(str)
    else:  # a probe-barcode matrix
        var.update(gene_ids=d["gene_id"].astype(str), probe_ids=d["id"].astype(str))
    var["feature_types"] = d["feature_type"].astype(str)
    if "filtered_barcodes" in f["matrix"]:
        obs["filtered_barcodes"] = d["filtered_barcodes"].astype(bool)
    if "features" not in f["matrix"]:
        raise _oom.AnnDataFormatError("10x h5 has no features group")
    for name, item in f["matrix"]["features"].items():
        if isinstance(item, h5py.Dataset) and name not in _FEATURE_SKIP:
            var[name] = d[name].astype(bool if item.dtype.kind == "b" else str)
    return obs, var


def _legacy_group(f: h5py.File, genome: str | None) -> str:
    children = list(f.keys())
    if not all(isinstance(f[k], h5py.Group) for k in children):
        raise _oom.AnnDataFormatError(
            f"'{f.filename}' is neither a Cell Ranger v3 nor a v2 (genome groups) .h5"
        )
    if not genome:
        if len(children) > 1:
            raise ValueError(
                f"{f.filename} contains more than one genome. For legacy 10x h5 files you must "
                f"specify the genome if more than one is present. Available genomes are: {children}"
            )
        return children[0]
    if genome not in children:
        raise ValueError(
            f"Could not find genome {genome!r} in {f.filename}. Available genomes are: {children}"
        )
    return genome


def _legacy_obs_var(f: h5py.File, group: str) -> tuple[dict, dict]:
    d = _small_datasets(f[group], {})
    obs = {"obs_names": d["barcodes"].astype(str)}
    var = {"var_names": d["gene_names"].astype(str), "gene_ids": d["genes"].astype(str)}
    return obs, var


def _frames(obs: dict, var: dict):
    """obs/var DataFrames exactly as ``AnnData(X, obs=obs, var=var)`` builds them.

    anndata takes ``obs_names``/``var_names`` from the dicts only when X is
    given; an empty sparse matrix of the right shape costs one indptr.
    """
    shape = (len(obs["obs_names"]), len(var["var_names"]))
    shell = anndata.AnnData(sp.csr_matrix(shape, dtype=np.float32), obs=obs, var=var)
    return shell.obs, shell.var


def _lazy_x(path: str, group: str) -> BackedArray:
    X = BackedArray(_oom.open(path, group, "10x"))
    # scanpy turns int32 counts into float32 (other dtypes are kept)
    return X.astype(np.float32) if X.dtype == np.int32 else X


def _keep_features(adata: AnnDataOOM, mask: np.ndarray) -> AnnDataOOM:
    """``adata[:, mask]``; ``adata`` itself when every feature is kept.

    The usual file holds gene expression only: an all-True mask would add a
    column selection that every later pass over X applies for nothing.
    """
    return adata if mask.all() else adata[:, mask]


def read_10x_h5(filename: str | os.PathLike, genome: str | None = None,
                gex_only: bool = True, backup_url: str | None = None) -> AnnDataOOM:
    """Open a Cell Ranger ``.h5`` matrix lazily, as :func:`scanpy.read_10x_h5` reads it.

    Reads Cell Ranger v2 files (one group per genome) and v3+ files
    (``/matrix`` with ``features/``).  X stays on disk: the stored genes ×
    cells CSC is read as a cells × genes CSR without conversion (int32
    counts read as float32, as scanpy).  obs and var are those of
    :func:`scanpy.read_10x_h5`: barcodes as obs_names, feature names as
    var_names (not made unique, as scanpy), ``gene_ids``, ``feature_types``
    and every other ``features/`` dataset (``genome``, ...) as var columns.

    Parameters
    ----------
    filename
        The ``.h5`` file (e.g. ``filtered_feature_bc_matrix.h5``).
    genome
        Keep only the features of this genome (v3+), or read this genome's
        group (v2; required when the file holds several).
    gex_only
        Keep only ``'Gene Expression'`` features (v3+); a lazy column subset.
    backup_url
        Where to download ``filename`` from when it does not exist (once, as scanpy).

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
        An HDF5 file without the datasets of a Cell Ranger matrix, or whose
        barcodes/features disagree with the matrix shape.
    ValueError
        ``genome`` is not in the file, or a v2 file holds several genomes
        and none was chosen.
    """
    path = _fspath(filename)
    fetch_missing(path, backup_url)
    with _open_h5(path) as f:
        v3 = "matrix" in f
        group = "matrix" if v3 else _legacy_group(f, genome)
        try:
            obs, var = _v3_obs_var(f) if v3 else _legacy_obs_var(f, group)
        except KeyError as e:
            raise _oom.AnnDataFormatError(
                f"'{path}' is missing datasets of a Cell Ranger matrix: {e}"
            ) from e
    X = _lazy_x(path, group)
    n_obs, n_var = len(obs["obs_names"]), len(var["var_names"])
    if X.shape != (n_obs, n_var):
        raise _oom.AnnDataFormatError(
            f"'{path}': the matrix has shape {X.shape} (cells × features) but the file lists "
            f"{n_obs} barcodes and {n_var} features"
        )
    with warnings.catch_warnings():
        if v3 and (genome or gex_only):  # scanpy silences these as well
            warnings.filterwarnings("ignore", r".*names are not unique", UserWarning)
        obs_df, var_df = _frames(obs, var)
        adata = AnnDataOOM(X=X, obs=obs_df, var=var_df)
    if not v3:
        return adata
    if genome:
        if genome not in var_df["genome"].array:
            raise ValueError(
                f"Could not find data corresponding to genome {genome!r} in {path}. "
                f"Available genomes are: {list(var_df['genome'].unique())}."
            )
        adata = _keep_features(adata, (adata.var["genome"] == genome).to_numpy())
    if gex_only:
        adata = _keep_features(adata, (adata.var["feature_types"] == "Gene Expression").to_numpy())
    if genome or gex_only:  # scanpy's copy of the subset warns about duplicates again
        for attr in ("obs", "var"):
            if not getattr(adata, f"{attr}_names").is_unique:
                anndata.utils.warn_names_duplicates(attr)
    return adata
