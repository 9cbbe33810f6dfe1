"""0.1.8-compatible normalisation (``chunked_normalize_total``, ``chunked_log1p``).

Also ``chunked_normalize_pearson_residuals``, which omicverse 2.3.2 calls.

The size factors come from the moments/count kernels used by
:func:`anndataoom.pp.normalize_total`; the transforms are the same lazy
plan ops (``lazy_normalize``, ``lazy_log1p``) plus the lazy Pearson-residual op
(``lazy_pearson_residuals``).
"""

from __future__ import annotations

import numpy as np

from anndataoom import _oom
from anndataoom._distributed import run_pass
from anndataoom._seed._common import cast_float32, lazy_matrix, rep, store
from anndataoom.experimental.pp._normalization import pearson_matrix

__all__ = ["chunked_normalize_total", "chunked_log1p", "chunked_normalize_pearson_residuals"]


def chunked_normalize_total(
    adata,
    *,
    target_sum: float | None = None,
    exclude_highly_expressed: bool = False,
    max_fraction: float = 0.05,
    chunk_size: int | None = None,
) -> None:
    """Normalise each cell to ``target_sum`` counts, lazily (anndataoom 0.1.8 API).

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` whose ``X`` holds counts.
    target_sum
        Total per cell after normalisation; ``None`` = median of the
        non-zero cell totals.
    exclude_highly_expressed
        Leave genes holding more than ``max_fraction`` of a cell's counts (in
        any cell) out of the size factors.
    max_fraction
        See ``exclude_highly_expressed``.
    chunk_size
        Accepted for compatibility; ignored.

    Returns
    -------
    ``None``. Sets ``layers['counts']`` to the current (lazy) ``X``,
    ``obs['_norm_factor']`` (cell total / ``target_sum``, 0 replaced by 1),
    ``uns['_pearson_precompute']`` (``sums_cells``, ``sums_genes``,
    ``sq_sums_genes``, ``sum_total``, ``n_obs``, ``n_vars`` of the counts,
    reused by :func:`chunked_highly_variable_genes_pearson`) and replaces
    ``X`` by a lazy float32 ``X / _norm_factor``.
    """
    X = adata.X
    m = lazy_matrix(X)
    n_obs, n_vars = (int(s) for s in m.shape)
    adata.layers["counts"] = X
    r = run_pass(m, _oom.moments).finalize()
    sums_genes = np.asarray(r["sum"][0], dtype=np.float64)
    sq_sums_genes = np.asarray(r["sumsq"][0], dtype=np.float64)
    sums_cells = np.asarray(r["row_sum"], dtype=np.float64)
    counts = sums_cells
    if exclude_highly_expressed:
        hi = run_pass(m, _oom.count_above, sums_cells * float(max_fraction),
                      row_args=(0,)).finalize()
        keep = np.asarray(hi) == 0
        if not keep.all():
            kept = m.subset(None, np.flatnonzero(keep).astype(np.int64))
            counts = np.asarray(run_pass(kept, _oom.positive_counts).finalize()[0],
                                dtype=np.float64)
    if target_sum is None:
        nonzero = counts[counts > 0]
        target_sum = float(np.median(nonzero)) if nonzero.size else 1.0
    factors = np.nan_to_num(counts / target_sum, nan=1.0, posinf=1.0, neginf=1.0)
    factors[factors == 0] = 1.0
    adata.obs["_norm_factor"] = factors
    adata.uns["_pearson_precompute"] = {
        "sums_cells": sums_cells.copy(),
        "sums_genes": sums_genes,
        "sq_sums_genes": sq_sums_genes,
        "sum_total": float(sums_genes.sum()),
        "n_obs": n_obs,
        "n_vars": n_vars,
    }
    store(adata, cast_float32(_oom.lazy_normalize(m, np.ascontiguousarray(factors))))


def chunked_log1p(adata) -> None:
    """Replace ``X`` by a lazy ``log(1 + X)`` (anndataoom 0.1.8 API).

    Unlike :func:`anndataoom.pp.log1p`, ``uns['log1p']`` is not set (as 0.1.8).
    """
    store(adata, _oom.lazy_log1p(lazy_matrix(adata.X)))


def chunked_normalize_pearson_residuals(
    adata,
    *,
    theta: float = 100,
    clip: float | None = None,
    check_values: bool = True,
    layer: str | None = None,
    inplace: bool = True,
    chunk_size: int | None = None,
):
    """Analytic Pearson residuals of the counts, as a lazy matrix.

    Same values as :func:`scanpy.experimental.pp.normalize_pearson_residuals`
    (float64 as there; ``μ = cell total · gene total / total``, residual
    ``(x − μ)/√(μ + μ²/θ)`` clipped to ``±clip``), computed block by block
    on read: one pass gathers the cell and gene totals, nothing dense of
    size ``n_obs × n_vars`` is ever held.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` whose ``X`` (or ``layer``) holds counts.
    theta
        Negative-binomial overdispersion (> 0).
    clip
        Clip residuals to ``±clip``; ``None`` = ``sqrt(n_obs)``.
    check_values
        Warn when the values are not non-negative integers.
    layer
        Use (and replace) this layer instead of ``X``.
    inplace
        Replace ``X`` / ``layer`` and set ``uns['pearson_residuals_normalization']``;
        otherwise return a dict with ``X`` (the lazy residuals), ``theta``,
        ``clip`` and ``computed_on``.
    chunk_size
        Accepted for compatibility; ignored.

    Returns
    -------
    ``None`` or the dict described under ``inplace``.
    """
    if layer is not None and layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not found in adata.layers")
    m = lazy_matrix(rep(adata, layer), "X" if layer is None else f"layers[{layer!r}]")
    if clip is None:
        clip = float(np.sqrt(int(m.shape[0])))
    out = pearson_matrix(m, theta=theta, clip=clip, check_values=check_values)
    computed_on = layer if layer else "adata.X"
    if not inplace:
        from anndataoom.pp._backed import wrap

        return dict(X=wrap(out), theta=theta, clip=clip, computed_on=computed_on)
    store(adata, out, layer)
    adata.uns["pearson_residuals_normalization"] = dict(
        theta=theta, clip=clip, computed_on=computed_on)
    return None
