"""``highly_variable_genes(flavor="seurat_v3" | "seurat_v3_paper")``.

Two streamed passes: per-batch gene means/variances, then — after the
loess fit of log-variance on log-mean (``skmisc.loess``, called exactly as
scanpy does) — per-batch sums of the counts clipped at
``mean + √n·σ_reg``, giving the standardised variance of each gene.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from anndataoom import _distributed as passes
from anndataoom.pp._hvg import batch_groups, check_finite

__all__ = ["hvg_seurat_v3", "rank_across_batches"]


def rank_across_batches(values, n_top_genes):
    """Per-batch ranks (descending), their masked median and the count of top-n batches."""
    ranked = np.argsort(np.argsort(-values, axis=1), axis=1).astype(np.float32)
    nbatches = np.sum((ranked < n_top_genes).astype(int), axis=0)
    ranked[ranked >= n_top_genes] = np.nan
    median = np.ma.median(np.ma.masked_invalid(ranked), axis=0).filled(np.nan)
    return median, nbatches


#: Fewer non-constant genes than this make skmisc's loess segfault.
MIN_LOESS_GENES = 4


def _groups(adata, batch_key):
    if batch_key is None:
        return None, np.array([None])
    values = adata.obs[batch_key].to_numpy()
    levels = np.unique(values)
    return batch_groups(values, levels), levels


def hvg_seurat_v3(adata, x, *, flavor, n_top_genes, batch_key, check_values, span, subset,
                  inplace):
    """Run the seurat_v3 selection on lazy array ``x`` of ``adata``."""
    try:
        from skmisc.loess import loess
    except ImportError as e:
        raise ImportError("Please install skmisc package via `pip install --user scikit-misc")\
            from e
    if flavor not in ("seurat_v3", "seurat_v3_paper"):
        raise ValueError(f"Did not recognize flavor {flavor}")
    groups, levels = _groups(adata, batch_key)
    n_groups = len(levels)
    r = passes.moments(x, groups, n_groups)
    check_finite(r, adata.var_names)
    if check_values and r["non_integer"]:
        warnings.warn(f"`flavor={flavor!r}` expects raw count data, but non-integers were found.",
                      UserWarning, stacklevel=3)
    n_all = r["n"].sum()
    mean_all = r["sum"].sum(axis=0) / n_all
    var_all = r["sumsq"].sum(axis=0) / n_all - mean_all**2
    if n_all != 1:
        var_all *= n_all / (n_all - 1)
    df = pd.DataFrame(index=adata.var_names)
    df["means"], df["variances"] = mean_all, var_all

    n_vars = x.shape[1]
    clip = np.zeros((n_groups, n_vars))
    reg_stds = []
    for g in range(n_groups):
        mean, var = r["mean"][g], r["var"][g]
        not_const = var > 0
        if not_const.sum() < MIN_LOESS_GENES:
            # skmisc's loess crashes the process on fewer points (as in scanpy).
            where = "the data" if batch_key is None else f"batch {levels[g]!r} of {batch_key!r}"
            raise ValueError(
                f"flavor={flavor!r}: {where} has {int(r['n'][g])} cell(s) and "
                f"{int(not_const.sum())} gene(s) with non-zero variance; the mean-variance "
                f"loess fit needs at least {MIN_LOESS_GENES} such genes"
                + ("" if batch_key is None else " (merge or drop batches this small)"))
        estimat_var = np.zeros(n_vars, dtype=np.float64)
        model = loess(np.log10(mean[not_const]), np.log10(var[not_const]), span=span, degree=2)
        model.fit()
        estimat_var[not_const] = model.outputs.fitted_values
        reg_std = np.sqrt(10**estimat_var)
        clip[g] = reg_std * np.sqrt(r["n"][g]) + mean
        reg_stds.append(reg_std)
    c = passes.moments(x, groups, n_groups, False, None, clip)
    norm_gene_vars = []
    for g in range(n_groups):
        n, mean, reg_std = r["n"][g], r["mean"][g], reg_stds[g]
        v = (1 / ((n - 1) * np.square(reg_std))) * (
            (n * np.square(mean)) + c["sumsq"][g] - 2 * c["sum"][g] * mean)
        norm_gene_vars.append(v.reshape(1, -1))
    norm_gene_vars = np.concatenate(norm_gene_vars, axis=0)
    median_rank, nbatches = rank_across_batches(norm_gene_vars, n_top_genes)

    df["gene_name"] = df.index
    df["highly_variable_nbatches"] = nbatches
    df["highly_variable_rank"] = median_rank
    df["variances_norm"] = np.mean(norm_gene_vars, axis=0)
    if flavor == "seurat_v3":
        cols, asc = ["highly_variable_rank", "highly_variable_nbatches"], [True, False]
    else:
        cols, asc = ["highly_variable_nbatches", "highly_variable_rank"], [False, True]
    order = df[cols].sort_values(cols, ascending=asc, na_position="last").index
    df["highly_variable"] = False
    df.loc[order[: int(n_top_genes)], "highly_variable"] = True

    if not inplace:
        if batch_key is None:
            df = df.drop(["highly_variable_nbatches"], axis=1)
        if subset:
            df = df.iloc[df["highly_variable"].to_numpy(), :]
        return df
    adata.uns["hvg"] = {"flavor": flavor}
    adata.var["highly_variable"] = df["highly_variable"].to_numpy()
    adata.var["highly_variable_rank"] = df["highly_variable_rank"].to_numpy()
    adata.var["means"] = df["means"].to_numpy()
    adata.var["variances"] = df["variances"].to_numpy()
    adata.var["variances_norm"] = df["variances_norm"].to_numpy().astype("float64", copy=False)
    if batch_key is not None:
        adata.var["highly_variable_nbatches"] = df["highly_variable_nbatches"].to_numpy()
    if subset:
        adata._inplace_subset_var(df["highly_variable"].to_numpy())
    return None
