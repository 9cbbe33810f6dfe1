"""``highly_variable_genes(flavor="pearson_residuals")`` (Lause et al. 2021).

Mirrors ``scanpy.experimental.pp.highly_variable_genes``.

Pass 1 streams per-batch gene sums, cell sums and overall moments; pass 2
streams the clipped analytic Pearson residuals
``(x − μ)/√(μ + μ²/θ)``, ``μ = g·c/T``, accumulating their variance per
gene and batch without ever forming the residual matrix.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from anndataoom import _oom
from anndataoom._distributed import run_pass
from anndataoom.pp._backed import sum_dtype
from anndataoom.pp._hvg import SKIP, batch_groups, check_finite
from anndataoom.pp._hvg_seurat_v3 import rank_across_batches

__all__ = ["hvg_pearson_residuals"]


def hvg_pearson_residuals(adata, m, *, theta, clip, n_top_genes, batch_key, check_values, layer,
                          subset, inplace):
    """Run the Pearson-residual selection on matrix ``m`` of ``adata``."""
    if theta <= 0:
        raise ValueError("Pearson residuals require theta > 0")
    if batch_key is None:
        groups, n_groups = None, 1
    else:
        values = adata.obs[batch_key].to_numpy()
        levels = np.unique(values)
        groups, n_groups = batch_groups(values, levels), len(levels)
    r = run_pass(m, _oom.moments, groups, n_groups, row_args=(0,)).finalize()
    check_finite(r, adata.var_names)
    if check_values and r["non_integer"]:
        warnings.warn("`flavor='pearson_residuals'` expects raw count data, but non-integers "
                      "were found.", UserWarning, stacklevel=3)
    sdt = sum_dtype(m.dtype)
    # scanpy sums in the data's type (float32 stays float32) before using f64
    col_sum = r["sum"].astype(sdt).astype(np.float64)
    row_sum = r["row_sum"].astype(sdt).astype(np.float64)
    totals = np.array([np.float64(np.sum(col_sum[g].astype(sdt))) for g in range(n_groups)])
    if np.any(r["row_sum"][groups != SKIP] == 0 if groups is not None else r["row_sum"] == 0):
        warnings.warn("Some cells have zero counts: their Pearson residuals are NaN "
                      "(as in scanpy), so are the residual variances. Filter cells first, e.g. "
                      "`pp.filter_cells(adata, min_counts=1)`.", UserWarning, stacklevel=3)
    if clip is None:
        # scanpy sets it from the first batch and keeps it for the others
        clip = np.sqrt(r["n"][0])
    if clip < 0:
        raise ValueError("Pearson residuals require `clip>=0` or `clip=None`.")
    res = _oom.residual_variances(m, row_sum, col_sum, totals, float(theta), float(clip),
                                     groups, sdt == np.float32)

    median_rank, nbatches = rank_across_batches(res, n_top_genes)
    n_all = r["n"].sum()
    means = r["sum"].sum(axis=0) / n_all
    variances = r["sumsq"].sum(axis=0) / n_all - means**2
    if n_all != 1:
        variances *= n_all / (n_all - 1)
    df = pd.DataFrame.from_dict(dict(
        means=means,
        variances=variances,
        residual_variances=np.mean(res, axis=0),
        highly_variable_rank=median_rank,
        highly_variable_nbatches=nbatches.astype(np.int64),
        highly_variable_intersection=nbatches == n_groups,
    ))
    df = df.set_index(adata.var_names)
    df = df.sort_values(["highly_variable_nbatches", "highly_variable_rank"],
                        ascending=[False, True], na_position="last")
    high_var = np.zeros(df.shape[0], dtype=bool)
    high_var[:n_top_genes] = True
    df["highly_variable"] = high_var
    df = df.loc[adata.var_names, :]

    if not inplace:
        if batch_key is None:
            df = df.drop(["highly_variable_nbatches", "highly_variable_intersection"], axis=1)
        if subset:
            df = df.iloc[df["highly_variable"].to_numpy(), :]
        return df
    adata.uns["hvg"] = {"flavor": "pearson_residuals", "computed_on": layer if layer else "adata.X"}
    adata.var["means"] = df["means"].to_numpy()
    adata.var["variances"] = df["variances"].to_numpy()
    adata.var["residual_variances"] = df["residual_variances"]
    adata.var["highly_variable_rank"] = df["highly_variable_rank"].to_numpy()
    if batch_key is not None:
        adata.var["highly_variable_nbatches"] = df["highly_variable_nbatches"].to_numpy()
        adata.var["highly_variable_intersection"] = df["highly_variable_intersection"].to_numpy()
    adata.var["highly_variable"] = df["highly_variable"].to_numpy()
    if subset:
        adata._inplace_subset_var(df["highly_variable"].to_numpy())
    return None
