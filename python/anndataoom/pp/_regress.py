"""``regress_out``: per-gene least-squares residuals, as a lazy transform.

scanpy's semantics, exactly:

- numeric keys (design ``D = [1, keys…]`` with ``DᵀD`` invertible): the
  residuals ``x − D·β`` with ``β = (DᵀD)⁻¹·DᵀX`` (scanpy's
  ``numpy_regress_out``); the result keeps float32 (integers up to 32 bits
  become float32, wider ones float64);
- a singular design: scanpy's per-gene GLM (least squares by
  pseudo-inverse), constant genes left unchanged, float64 result;
- one categorical key: scanpy's per-gene GLM on ``[1, m]`` where ``m`` is
  the gene's float32 mean in the cell's category (0 for missing
  categories), constant genes unchanged, float64 result.

``DᵀX`` (group sums for a category) and each gene's range come from one
streamed pass; the small k × n_vars coefficient table is solved here with
numpy, and the residuals are computed block by block whenever X is read
(dense output: residuals are not sparse).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from anndataoom import _distributed as passes
from anndataoom import _oom
from anndataoom._progress import with_pass_bars
from anndataoom.pp._backed import get_array, get_matrix, set_matrix, transform
from anndataoom.pp._docs import doc_lazy, doc_params

__all__ = ["regress_out"]


def _float_dtype(dtype) -> str:
    """Return the float type scanpy's numpy path computes in for ``dtype``."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.floating):
        return "float32" if dtype == np.float32 else "float64"
    return "float32" if dtype.itemsize <= 4 else "float64"


def _categorical(matrix, col: pd.Series):
    cats = col.cat.categories
    ncat = len(cats)
    codes = col.cat.codes.to_numpy()
    codes = np.where(codes < 0, ncat, codes).astype(np.uint32)  # missing → own group
    ngroups = ncat + 1
    sums, lo, hi = passes.regress_stats(matrix, codes=codes, ngroups=ngroups)
    counts = np.bincount(codes, minlength=ngroups).astype(np.float64)
    # scanpy's regressor: each gene's mean in the category, stored as float32.
    m = np.zeros_like(sums)
    filled = counts[:ncat] > 0
    m[:ncat][filled] = (sums[:ncat][filled] / counts[:ncat][filled, None]).astype(np.float32)
    # Per gene, least squares of x on [1, m] from the sufficient statistics.
    n = counts.sum()
    s_m = counts @ m
    s_mm = counts @ (m * m)
    s_x = sums.sum(axis=0)
    s_xm = (m * sums).sum(axis=0)
    det = n * s_mm - s_m * s_m
    regular = np.abs(det) > 1e-12 * np.maximum(n * s_mm, np.finfo(float).tiny)
    safe = np.where(regular, det, 1.0)
    a = np.where(regular, (s_mm * s_x - s_m * s_xm) / safe, s_x / n)
    b = np.where(regular, (n * s_xm - s_m * s_x) / safe, 0.0)
    table = a[None, :] + b[None, :] * m
    table[:, lo == hi] = 0.0  # constant genes are left as they are
    return dict(codes=codes, ngroups=ngroups), table, "float64"


def _numeric(matrix, adata, keys):
    regressors = adata.obs[keys] if keys else adata.obs.copy()
    regressors.insert(0, "ones", 1.0)
    design = np.ascontiguousarray(regressors.to_numpy(), dtype=np.float64)
    gram = design.T @ design
    dtx, lo, hi = passes.regress_stats(matrix, design=design)
    if np.linalg.det(gram) != 0:
        coef = np.linalg.inv(gram) @ dtx
        dtype = _float_dtype(matrix.dtype)
    else:  # scanpy's GLM fallback: least squares through the pseudo-inverse
        coef = np.linalg.pinv(gram) @ dtx
        coef[:, lo == hi] = 0.0
        dtype = "float64"
    return dict(design=design), np.ascontiguousarray(coef), dtype


@doc_params(lazy=doc_lazy)
@with_pass_bars("regress_out")
def regress_out(adata, keys, *, layer=None, n_jobs=None, copy=False):
    """Regress out (mostly) unwanted sources of variation (scanpy's ``regress_out``).

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` (``X`` stays on disk) or an
        in-memory :class:`~anndata.AnnData` (handed over to scanpy).
    keys
        obs keys to regress on: numeric columns, or a single categorical
        column (regressing on the per-category means).
    layer
        Correct ``adata.layers[layer]`` instead of ``adata.X``.
    n_jobs
        Accepted for compatibility (the Rust core uses all cores).
    copy
        Work on (and return) a copy of ``adata``.

    Returns
    -------
    ``None`` or the copy. ``X`` (or the layer) becomes the residuals: dense
    blocks, float32 for float32 (or ≤ 32-bit integer) input on the numeric
    path, float64 otherwise (as scanpy).

    {lazy}
    """
    matrix = get_matrix(adata, layer)
    if matrix is None:
        import scanpy as sc

        return sc.pp.regress_out(adata, keys, layer=layer, n_jobs=n_jobs, copy=copy)
    adata = adata.copy() if copy else adata
    adata.strings_to_categoricals()
    matrix = get_matrix(adata, layer)
    if isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    for k in keys:
        if k not in adata.obs.columns:
            raise KeyError(f"{k!r} is not a column of adata.obs")
    if keys and isinstance(adata.obs[keys[0]].dtype, pd.CategoricalDtype):
        if len(keys) > 1:
            raise ValueError(
                "If providing categorical variable, only a single one is allowed. "
                "For this one we regress on the mean for each category."
            )
        parts, coef, dtype = _categorical(matrix, adata.obs[keys[0]])
    else:
        parts, coef, dtype = _numeric(matrix, adata, keys)
    set_matrix(adata, transform(get_array(adata, layer), _oom.lazy_regress, coef, dtype, **parts),
               layer)
    return adata if copy else None
