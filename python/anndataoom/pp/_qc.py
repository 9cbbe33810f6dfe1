"""``calculate_qc_metrics``: every scanpy QC column from one pass over X."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from anndataoom import _distributed as passes
from anndataoom._progress import with_pass_bars
from anndataoom.pp._backed import get_array, sum_dtype
from anndataoom.pp._docs import doc_adata, doc_params

__all__ = ["calculate_qc_metrics"]


def _nnz_dtypes(matrix):
    """Return the dtypes scanpy's ``getnnz`` gives (rows, columns) for this storage."""
    fmt = matrix.format
    if not matrix.is_sparse or fmt == "array":
        return np.int64, np.int64
    wide = (matrix.stored_nnz or 0) >= 2**31
    if fmt == "csr_matrix":
        return (np.int64 if wide else np.int32), np.int64
    return np.int64, (np.int64 if wide else np.int32)


@doc_params(adata=doc_adata)
@with_pass_bars("calculate_qc_metrics")
def calculate_qc_metrics(
    adata,
    *,
    expr_type: str = "counts",
    var_type: str = "genes",
    qc_vars: Collection[str] | str = (),
    percent_top: Collection[int] | None = (50, 100, 200, 500),
    layer: str | None = None,
    use_raw: bool = False,
    inplace: bool = False,
    log1p: bool = True,
    parallel: bool | None = None,
):
    """Calculate quality control metrics (scanpy's ``calculate_qc_metrics``).

    All metrics come from a single parallel pass over the matrix: per cell
    the total, the number of expressed genes, the share of the top-N genes
    (a per-row partial sort) and the totals of each ``qc_vars`` gene set; per
    gene the total, mean and number of expressing cells.

    Parameters
    ----------
    {adata}
    expr_type
        Name of the kind of values in X (``counts`` in column names).
    var_type
        Name of the variables (``genes`` in column names).
    qc_vars
        Boolean columns of ``adata.var`` marking gene sets (e.g. ``"mt"``).
    percent_top
        Ranks N for ``pct_<expr_type>_in_top_N_<var_type>``.
    layer
        Use this layer instead of X.
    use_raw
        Use ``adata.raw.X``.
    inplace
        Write the columns into ``adata.obs``/``adata.var`` (scanpy's default
        is ``False``: return the two data frames).
    log1p
        Also add the ``log1p_*`` columns.
    parallel
        Deprecated, ignored (as in scanpy).

    Returns
    -------
    ``(obs_metrics, var_metrics)`` data frames, or ``None`` when ``inplace``.
    Columns and dtypes are those of scanpy.
    """
    if parallel is not None:
        import warnings

        warnings.warn(
            "Argument `parallel` is deprecated, and currently has no effect.",
            FutureWarning,
            stacklevel=2,
        )
    x = get_array(adata, layer, use_raw)
    if x is None:
        import scanpy as sc

        return sc.pp.calculate_qc_metrics(
            adata, expr_type=expr_type, var_type=var_type, qc_vars=qc_vars,
            percent_top=percent_top, layer=layer, use_raw=use_raw, inplace=inplace, log1p=log1p,
        )
    if isinstance(qc_vars, str):
        qc_vars = [qc_vars]
    qc_vars = list(qc_vars)
    n_obs, n_vars = x.shape
    top = sorted(int(n) for n in percent_top) if percent_top else []
    if top and not (max(top) <= n_vars and min(top) > 0):
        raise IndexError("Positions outside range of features.")
    masks = np.zeros((len(qc_vars), n_vars), dtype=bool)
    for i, q in enumerate(qc_vars):
        if q not in adata.var:
            raise KeyError(f"qc_vars: {q!r} is not a column of adata.var")
        masks[i] = np.asarray(adata.var[q].to_numpy(), dtype=bool)

    total, nnz, top_cum, mask_sum, col_sum, col_nnz = passes.qc_metrics(x, top, masks)

    sdt = sum_dtype(x.dtype)
    row_nnz_dt, col_nnz_dt = _nnz_dtypes(x.matrix)
    total_s = total.astype(sdt)
    obs = pd.DataFrame(index=adata.obs_names)
    obs[f"n_{var_type}_by_{expr_type}"] = nnz.astype(row_nnz_dt)
    if log1p:
        obs[f"log1p_n_{var_type}_by_{expr_type}"] = np.log1p(obs[f"n_{var_type}_by_{expr_type}"])
    obs[f"total_{expr_type}"] = total_s
    if log1p:
        obs[f"log1p_total_{expr_type}"] = np.log1p(obs[f"total_{expr_type}"])
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, n in enumerate(top):
            obs[f"pct_{expr_type}_in_top_{n}_{var_type}"] = top_cum[:, i] / total_s * 100
        for i, q in enumerate(qc_vars):
            obs[f"total_{expr_type}_{q}"] = mask_sum[:, i].astype(sdt)
            if log1p:
                obs[f"log1p_total_{expr_type}_{q}"] = np.log1p(obs[f"total_{expr_type}_{q}"])
            obs[f"pct_{expr_type}_{q}"] = (
                obs[f"total_{expr_type}_{q}"] / obs[f"total_{expr_type}"] * 100
            )

    var = pd.DataFrame(index=adata.var_names)
    var[f"n_cells_by_{expr_type}"] = col_nnz.astype(col_nnz_dt)
    var[f"mean_{expr_type}"] = col_sum / n_obs if n_obs else np.full(n_vars, np.nan)
    if log1p:
        var[f"log1p_mean_{expr_type}"] = np.log1p(var[f"mean_{expr_type}"])
    var[f"pct_dropout_by_{expr_type}"] = (1 - var[f"n_cells_by_{expr_type}"] / n_obs) * 100
    var[f"total_{expr_type}"] = col_sum.astype(sdt)
    if log1p:
        var[f"log1p_total_{expr_type}"] = np.log1p(var[f"total_{expr_type}"])

    if not inplace:
        return obs, var
    adata.obs[obs.columns] = obs
    adata.var[var.columns] = var
    return None
