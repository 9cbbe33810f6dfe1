"""``highly_variable_genes``: statistics streamed in Rust, selection as scanpy.

Per-gene (per-batch) statistics are streamed in Rust, then scanpy's
selection logic runs on the small per-gene tables.

Flavors ``seurat`` and ``cell_ranger`` live here; ``seurat_v3`` /
``seurat_v3_paper`` in ``_hvg_seurat_v3.py``; ``pearson_residuals`` in
``_hvg_pearson.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from anndataoom import _distributed as passes
from anndataoom._core._col_moments import ColMoments
from anndataoom._progress import with_pass_bars
from anndataoom.pp._backed import get_array
from anndataoom.pp._docs import doc_adata, doc_params

__all__ = ["highly_variable_genes", "batch_groups"]

SKIP = np.iinfo(np.uint32).max
_CUTOFF_DEFAULTS = dict(min_disp=0.5, max_disp=np.inf, min_mean=0.0125, max_mean=3)


def batch_groups(values, levels):
    """Group id (``uint32``) of each cell for the batch ``levels``; others skipped."""
    codes = pd.Categorical(values, categories=levels).codes
    return np.where(codes < 0, SKIP, codes).astype(np.uint32)


class _Cutoffs:
    def __init__(self, min_disp, max_disp, min_mean, max_mean):
        self.min_disp, self.max_disp = min_disp, max_disp
        self.min_mean, self.max_mean = min_mean, max_mean

    def in_bounds(self, mean, disp_norm):
        return ((mean > self.min_mean) & (mean < self.max_mean)
                & (disp_norm > self.min_disp) & (disp_norm < self.max_disp))


def _cutoff(n_top_genes, **cutoffs):
    if n_top_genes is None:
        return _Cutoffs(**cutoffs)
    if cutoffs != _CUTOFF_DEFAULTS:
        warnings.warn("If you pass `n_top_genes`, all cutoffs are ignored.", UserWarning,
                      stacklevel=4)
    return n_top_genes


def _mean_bins(means, flavor, n_bins):
    if flavor == "seurat":
        return pd.cut(means, bins=n_bins)
    edges = np.r_[-np.inf, np.percentile(means, np.arange(10, 105, 5)), np.inf]
    try:
        return pd.cut(means, bins=edges)
    except ValueError as e:
        raise ValueError(
            f"{e} — flavor='cell_ranger' bins genes by percentiles of their mean, and "
            "several percentiles coincide (typically many genes with mean 0 in unfiltered "
            "data). Filter genes first, e.g. `pp.filter_genes(adata, min_cells=1)`, or use "
            "flavor='seurat'."
        ) from e


def _mad(a):
    from statsmodels.robust import mad

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return mad(a)


def _disp_stats(df, flavor):
    grouped = df.groupby("mean_bin", observed=True)["dispersions"]
    if flavor == "seurat":
        stats = grouped.agg(avg="mean", dev="std")
        single = stats["dev"].isnull()
        if single.to_numpy().any():
            # a bin with one gene: its normalised dispersion becomes 1
            stats.loc[single, "dev"] = stats.loc[single, "avg"]
            stats.loc[single, "avg"] = 0
    else:
        stats = grouped.agg(avg="median", dev=_mad)
    return stats.loc[df["mean_bin"]].set_index(df.index)


def _nth_highest(x, n):
    x = x[~np.isnan(x)]
    if x.size == 0:
        raise ValueError(
            "no gene has a finite normalized dispersion: are the values log-normalized "
            "counts (no negative values), and has every batch more than one cell?")
    if n > x.size:
        warnings.warn(
            "`n_top_genes` > number of normalized dispersions, returning all genes with "
            "normalized dispersions.", UserWarning, stacklevel=6)
        n = x.size
    x = np.sort(x)[::-1]
    return x[n - 1]


def _select(mean, disp_norm, cutoff, n_vars):
    if isinstance(cutoff, _Cutoffs):
        return cutoff.in_bounds(mean, np.nan_to_num(disp_norm))
    n = min(cutoff, n_vars)
    return np.nan_to_num(disp_norm, nan=-np.inf) >= _nth_highest(disp_norm, n)


def dispersion_table(mean, var, *, flavor, n_bins, log):
    """Return scanpy's ``means``, ``dispersions``, ``mean_bin`` and ``dispersions_norm``.

    With ``log`` (Seurat's convention) the dispersion is logged and the mean
    log1p'd; ``means`` holds the mean used for binning.
    """
    mean = mean.copy()
    mean[mean == 0] = 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        disp = var / mean
        if log:
            disp[disp == 0] = np.nan
            disp = np.log(disp)
            mean = np.log1p(mean)
    df = pd.DataFrame(dict(means=mean, dispersions=disp))
    df["mean_bin"] = _mean_bins(df["means"], flavor, n_bins)
    stats = _disp_stats(df, flavor)
    df["dispersions_norm"] = (df["dispersions"] - stats["avg"]) / stats["dev"]
    return df


def _one_batch(mean, var, names, *, flavor, n_bins, cutoff):
    """Compute scanpy's per-batch table from the genes' mean and variance."""
    df = dispersion_table(mean, var, flavor=flavor, n_bins=n_bins, log=flavor == "seurat")
    df["highly_variable"] = _select(df["means"].to_numpy(), df["dispersions_norm"].to_numpy(),
                                    cutoff, len(names))
    df.index = names
    return df


def check_finite(r: dict, names) -> None:
    """Refuse NaN or infinite values, which scanpy's ``log1p`` refuses too.

    Our ``log1p`` is lazy, so the first pass to see them is this one; their
    sums are not finite.
    """
    bad = ~np.isfinite(np.asarray(r["sum"])).all(axis=0)
    if bad.any():
        raise ValueError(
            f"X has NaN or infinite values in {int(bad.sum())} gene(s), e.g. "
            f"{list(names[bad][:5])}; highly variable genes need finite values")


def _stats(x, adata, flavor, groups=None, n_groups=1):
    base = adata.uns.get("log1p", {}).get("base")
    factor = None if base is None else float(np.log(base))
    # seurat's pass also sums the log values as stored: scale's numbers
    unmapped = flavor == "seurat" and groups is None
    r = passes.moments(x, groups, n_groups, flavor == "seurat", factor, unmapped=unmapped)
    check_finite(r, adata.var_names)
    if "unmapped_mean" in r:
        x._col_moments = ColMoments(r["unmapped_mean"], r["unmapped_var"])
    return r


def _seurat_cell_ranger(adata, x, *, flavor, n_bins, cutoff, batch_key):
    names = adata.var_names
    if batch_key is None:
        r = _stats(x, adata, flavor)
        return _one_batch(r["mean"][0], r["var"][0], names, flavor=flavor, n_bins=n_bins,
                          cutoff=cutoff)
    col = adata.obs[batch_key]
    if not isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype("category")
    levels = col.cat.categories
    r = _stats(x, adata, flavor, batch_groups(col, levels), len(levels))
    dfs = []
    for g in range(len(levels)):
        filt = r["n_pos"][g] > 0
        df = _one_batch(r["mean"][g][filt], r["var"][g][filt], names[filt], flavor=flavor,
                        n_bins=n_bins, cutoff=cutoff)
        n_removed = int((~filt).sum())
        if n_removed:
            missing = pd.DataFrame(np.zeros((n_removed, len(df.columns))), columns=df.columns)
            missing["highly_variable"] = missing["highly_variable"].astype(bool)
            missing.index = names[~filt]
            df = pd.concat([df, missing]).loc[names]
        dfs.append(df)
    df = pd.concat(dfs, axis=0)
    df["highly_variable"] = df["highly_variable"].astype(int)
    df = df.groupby(df.index, observed=True).agg(
        dict(means="mean", dispersions="mean", dispersions_norm="mean", highly_variable="sum"))
    df["highly_variable_nbatches"] = df["highly_variable"]
    df["highly_variable_intersection"] = df["highly_variable_nbatches"] == len(levels)
    if isinstance(cutoff, int):
        order = names.copy()
        df = df.sort_values(["highly_variable_nbatches", "dispersions_norm"], ascending=False,
                            na_position="last")
        df["highly_variable"] = np.arange(df.shape[0]) < cutoff
        df = df.loc[order]
    else:
        df["dispersions_norm"] = df["dispersions_norm"].fillna(0)
        df["highly_variable"] = cutoff.in_bounds(df["means"], df["dispersions_norm"])
    return df


@doc_params(adata=doc_adata)
@with_pass_bars("highly_variable_genes")
def highly_variable_genes(
    adata,
    *,
    layer: str | None = None,
    n_top_genes: int | None = None,
    min_disp: float = 0.5,
    max_disp: float = np.inf,
    min_mean: float = 0.0125,
    max_mean: float = 3,
    span: float = 0.3,
    n_bins: int = 20,
    flavor: str = "seurat",
    subset: bool = False,
    inplace: bool = True,
    batch_key: str | None = None,
    check_values: bool = True,
    theta: float = 100,
    clip: float | None = None,
    chunksize: int = 1000,
):
    """Annotate highly variable genes (scanpy's ``highly_variable_genes``).

    Per-gene statistics (mean, variance, per batch) are streamed from the
    matrix in Rust; the selection (binning, normalised dispersions, loess
    for ``seurat_v3``, ranks across batches) follows scanpy exactly.

    Parameters
    ----------
    {adata}
    layer
        Use this layer instead of X.
    n_top_genes
        Number of genes to keep (required for ``seurat_v3*`` — default 2000 —
        and ``pearson_residuals``).
    min_disp, max_disp, min_mean, max_mean
        Cutoffs for ``seurat``/``cell_ranger`` when ``n_top_genes`` is None.
    span
        loess span for ``seurat_v3``.
    n_bins
        Number of mean bins for ``seurat``.
    flavor
        ``seurat`` (expects log data), ``cell_ranger``, ``seurat_v3``,
        ``seurat_v3_paper`` (expect counts), or ``pearson_residuals``
        (expects counts; as ``scanpy.experimental.pp.highly_variable_genes``).
    subset
        Subset the genes (lazily, in place) to the highly variable ones.
    inplace
        Write the columns into ``adata.var``; otherwise return a data frame.
    batch_key
        ``obs`` column: select genes within each batch and combine.
    check_values
        Warn when a counts flavor sees non-integer values.
    theta, clip, chunksize
        ``pearson_residuals`` only: overdispersion, residual clip
        (``None`` = √n_obs) and (ignored) chunk size.

    Returns
    -------
    ``None`` or a data frame with scanpy's columns (``highly_variable``,
    ``means``, ``dispersions``, ``dispersions_norm``, ``variances``,
    ``variances_norm``, ``highly_variable_rank``, ``highly_variable_nbatches``,
    ``highly_variable_intersection``, ``residual_variances`` depending on the
    flavor); ``uns['hvg'] = {{'flavor': flavor}}``.
    """
    if not hasattr(adata, "var"):
        raise ValueError(
            "`pp.highly_variable_genes` expects an `AnnData` argument, "
            "pass `inplace=False` if you want to return a `pd.DataFrame`."
        )
    if batch_key is not None and batch_key not in adata.obs:
        raise KeyError(f"batch_key={batch_key!r} is not a column of adata.obs")
    x = get_array(adata, layer)
    if flavor == "pearson_residuals":
        from anndataoom.pp._hvg_pearson import hvg_pearson_residuals

        if n_top_genes is None:
            raise ValueError(
                "`pp.highly_variable_genes` requires the argument `n_top_genes`"
                " for `flavor='pearson_residuals'`"
            )
        if x is None:
            import scanpy as sc

            return sc.experimental.pp.highly_variable_genes(
                adata, theta=theta, clip=clip, n_top_genes=n_top_genes, batch_key=batch_key,
                chunksize=chunksize, check_values=check_values, layer=layer, subset=subset,
                inplace=inplace)
        return hvg_pearson_residuals(adata, x.matrix, theta=theta, clip=clip,
                                     n_top_genes=n_top_genes, batch_key=batch_key,
                                     check_values=check_values, layer=layer, subset=subset,
                                     inplace=inplace)
    if x is None:
        import scanpy as sc

        return sc.pp.highly_variable_genes(
            adata, layer=layer, n_top_genes=n_top_genes, min_disp=min_disp, max_disp=max_disp,
            min_mean=min_mean, max_mean=max_mean, span=span, n_bins=n_bins, flavor=flavor,
            subset=subset, inplace=inplace, batch_key=batch_key, check_values=check_values)
    if flavor in ("seurat_v3", "seurat_v3_paper"):
        from anndataoom.pp._hvg_seurat_v3 import hvg_seurat_v3

        return hvg_seurat_v3(adata, x, flavor=flavor, n_top_genes=2000 if n_top_genes is None
                             else n_top_genes, batch_key=batch_key, check_values=check_values,
                             span=span, subset=subset, inplace=inplace)
    if flavor not in ("seurat", "cell_ranger"):
        raise ValueError('`flavor` needs to be "seurat" or "cell_ranger"')
    cutoff = _cutoff(n_top_genes, min_disp=min_disp, max_disp=max_disp, min_mean=min_mean,
                     max_mean=max_mean)
    df = _seurat_cell_ranger(adata, x, flavor=flavor, n_bins=n_bins, cutoff=cutoff,
                             batch_key=batch_key)
    if not inplace:
        if subset:
            df = df.loc[df["highly_variable"]]
        return df
    adata.uns["hvg"] = {"flavor": flavor}
    adata.var["highly_variable"] = df["highly_variable"]
    adata.var["means"] = df["means"]
    adata.var["dispersions"] = df["dispersions"]
    adata.var["dispersions_norm"] = df["dispersions_norm"].astype(np.float32, copy=False)
    if batch_key is not None:
        adata.var["highly_variable_nbatches"] = df["highly_variable_nbatches"]
        adata.var["highly_variable_intersection"] = df["highly_variable_intersection"]
    if subset:
        adata._inplace_subset_var(df["highly_variable"].to_numpy())
    return None
