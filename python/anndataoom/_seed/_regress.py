"""``chunked_regress``: regress obs covariates out of ``X`` lazily (omicverse 2.3.2 API).

One streamed pass gathers ``DᵀX`` (the sufficient statistics of the
per-gene least-squares fit, shared with the regress-out op of the Rust
plan); the coefficients are solved as scanpy's ``numpy_regress_out`` does
(``(DᵀD)⁻¹ DᵀX``); the residuals ``x − D·β`` are computed per block on read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from anndataoom import _oom
from anndataoom._distributed import regress_stats
from anndataoom._seed._common import lazy_matrix, rep, store

__all__ = ["chunked_regress"]


def _out_dtype(dtype) -> str:
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.floating):
        return "float32" if dt == np.float32 else "float64"
    return "float32" if dt.itemsize <= 4 else "float64"


def chunked_regress(
    adata,
    keys: Sequence[str] | str = ("mito_perc", "nUMIs"),
    *,
    layer: str | None = None,
    key_added: str = "regressed",
    chunk_size: int | None = None,
) -> None:
    """Store the residuals of ``X`` after regressing out ``obs[keys]`` in ``layers[key_added]``.

    Numeric keys: per gene ordinary least squares on ``[1, *keys]`` (as
    scanpy's ``regress_out``; a singular design falls back to the
    least-norm solution).  A single categorical key: the per-category gene
    means are subtracted (what scanpy's per-gene fit on them gives).

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM`.
    keys
        ``obs`` columns to regress on.
    layer
        Regress this layer instead of ``X``.
    key_added
        Layer receiving the lazy residuals (omicverse reads ``'regressed'``).
    chunk_size
        Accepted for compatibility; ignored.

    Returns
    -------
    ``None``. ``layers[key_added]`` is a lazy dense matrix (float32 for
    float32 or small-integer input, else float64); ``X`` is unchanged.
    """
    if isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    if not keys:
        raise ValueError("keys must name at least one adata.obs column")
    missing = [k for k in keys if k not in adata.obs.columns]
    if missing:
        raise KeyError(f"columns {missing} not found in adata.obs")
    if layer is not None and layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not found in adata.layers")
    m = lazy_matrix(rep(adata, layer))
    dtype = _out_dtype(m.dtype)
    first = adata.obs[keys[0]]
    if isinstance(first.dtype, pd.CategoricalDtype):
        if len(keys) > 1:
            raise ValueError("If providing categorical variable, only a single one is allowed. "
                             "For this one we regress on the mean for each category.")
        codes = first.cat.codes.to_numpy()
        if (codes < 0).any():
            raise ValueError(f"obs[{keys[0]!r}] has missing values")
        codes = codes.astype(np.uint32)
        ngroups = len(first.cat.categories)
        sums = np.asarray(regress_stats(m, codes=codes, ngroups=ngroups)[0])
        counts = np.bincount(codes, minlength=ngroups).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            coef = np.nan_to_num(sums / counts[:, None])
        out = _oom.lazy_regress(m, np.ascontiguousarray(coef), dtype, codes=codes,
                                 ngroups=ngroups)
    else:
        design = np.column_stack(
            [np.ones(adata.n_obs)] + [adata.obs[k].to_numpy(dtype=np.float64) for k in keys])
        design = np.ascontiguousarray(design)
        dtx = np.asarray(regress_stats(m, design=design)[0])
        gram = design.T @ design
        if np.linalg.det(gram) != 0:
            coef = np.linalg.inv(gram) @ dtx
        else:
            coef = np.linalg.pinv(gram) @ dtx
        out = _oom.lazy_regress(m, np.ascontiguousarray(coef), dtype, design=design)
    store(adata, out, key_added)
