"""``recipe_zheng17`` / ``recipe_seurat`` / ``recipe_weinreb17``: scanpy's recipes, streamed.

Each recipe is composed of the streamed ``pp`` functions (filters,
``normalize_total``, ``log1p``, ``scale``, ``pca``).  The gene selection of
scanpy's deprecated ``filter_genes_dispersion`` — called by the recipes on
the matrix itself, so on the *current* values with its own ``log`` switch,
float32 rounding and cutoffs — is reproduced here from the genes' mean and
variance, streamed in one pass; only per-gene and per-cell vectors are held
in memory, never ``X``.  ``recipe_weinreb17`` likewise rebuilds scanpy's
deprecated per-cell normalisation (``max_fraction``), coefficient-of-variation
filter and z-score as lazy transforms before a streamed PCA.

An in-memory AnnData is handed over to scanpy's own recipe.
"""

from __future__ import annotations

import numbers

import numpy as np

from anndataoom import _distributed as passes
from anndataoom import _oom
from anndataoom._progress import with_pass_bars
from anndataoom.pp._backed import get_array, is_float, set_matrix, transform
from anndataoom.pp._docs import doc_adata, doc_copy, doc_params
from anndataoom.pp._filter import filter_cells, filter_genes
from anndataoom.pp._hvg import dispersion_table
from anndataoom.pp._log1p import log1p
from anndataoom.pp._normalize import normalize_total
from anndataoom.pp._pca import pca
from anndataoom.pp._scale import scale

__all__ = ["recipe_seurat", "recipe_weinreb17", "recipe_zheng17"]

_DOC_PLOT = """\
plot
    Show scanpy's plot of the gene dispersions vs. means."""


# -- scanpy's deprecated ``filter_genes_dispersion`` on a lazy matrix ---------------


def _gene_mean_var(x):
    """Per-gene mean and variance as scanpy's ``_get_mean_var`` computes them.

    Scanpy takes ``mean(x²) - mean(x)²`` (times n/(n-1)) with each square
    rounded to the matrix's float type before the f64 sum; the selection
    cutoffs are sensitive to those last bits, so the squares are summed in a
    second pass over a lazy ``x**2`` of that type rather than taken from the
    (more accurate) moments pass.
    """
    n = x.shape[0]
    dt = x.dtype if is_float(x.dtype) else np.dtype(np.float64)
    total = np.asarray(passes.moments(x)["sum"][0], dtype=np.float64)
    squares = transform(x, _oom.lazy_power, 2.0, dtype=str(dt))
    total_sq = np.asarray(passes.moments(squares)["sum"][0], dtype=np.float64)
    mean = total / n
    var = total_sq / n - mean**2
    if n != 1:
        var *= n / (n - 1)
    return mean, var


def _check_n_top_genes(n_top_genes, n_vars):
    if isinstance(n_top_genes, bool) or not isinstance(n_top_genes, numbers.Integral):
        raise TypeError(f"n_top_genes must be an integer, got {type(n_top_genes).__name__}")
    if n_top_genes < 1:
        raise ValueError(f"n_top_genes must be at least 1, got {n_top_genes}")
    if n_top_genes > n_vars:
        raise ValueError(
            f"n_top_genes={n_top_genes} is more than the {n_vars} genes of adata")


def _filter_genes_dispersion(
    x, *, flavor, min_disp=0.5, max_disp=None, min_mean=0.0125, max_mean=3, n_bins=20,
    n_top_genes=None, log=True,
):
    """Scanpy's ``filter_genes_dispersion`` of a lazy matrix: its record array.

    Fields ``gene_subset``, ``means``, ``dispersions``, ``dispersions_norm``
    as scanpy returns them for a matrix (two streamed passes: sums, squares).
    """
    if flavor not in ("seurat", "cell_ranger"):
        raise ValueError('`flavor` needs to be "seurat" or "cell_ranger"')
    df = dispersion_table(*_gene_mean_var(x), flavor=flavor, n_bins=n_bins, log=log)
    mean = df["means"].to_numpy()
    disp_norm = df["dispersions_norm"].to_numpy()
    if flavor == "cell_ranger":  # the deprecated selection takes the absolute deviation
        disp_norm = np.abs(disp_norm)
    disp32 = disp_norm.astype(np.float32)
    if n_top_genes is not None:
        # scanpy's cutoff is the n-th highest float32 value, compared with the f64 values
        finite = np.sort(disp32[~np.isnan(disp32)])[::-1]
        if n_top_genes > finite.size:
            raise ValueError(
                f"n_top_genes={n_top_genes} but only {finite.size} genes have a normalized "
                "dispersion (scanpy raises IndexError here)")
        gene_subset = disp_norm >= finite[n_top_genes - 1]
    else:
        max_disp = np.inf if max_disp is None else max_disp
        disp32[np.isnan(disp32)] = 0
        gene_subset = ((mean > min_mean) & (mean < max_mean)
                       & (disp32 > min_disp) & (disp32 < max_disp))
    if not gene_subset.any():
        # scanpy goes on with an empty matrix and fails in the next step
        why = ("the cutoffs" if n_top_genes is None else
               f"n_top_genes={n_top_genes}: scanpy's cutoff is the float32 rounding of the "
               "n-th highest normalized dispersion, which can exclude that gene itself")
        raise ValueError(f"no gene passes the dispersion selection ({why})")
    return np.rec.fromarrays(
        (gene_subset, mean, df["dispersions"].to_numpy(),
         disp_norm.astype(np.float32)),
        dtype=[("gene_subset", bool), ("means", "float32"), ("dispersions", "float32"),
               ("dispersions_norm", "float32")],
    )


def _plot(result, log):
    """Scanpy's plot of the dispersion selection (two scatter panels, n_vars points)."""
    import scanpy as sc

    sc.pl.highly_variable_genes(result, log=log, highly_variable_genes=False)


def _lazy_x(adata, name):
    """Return the lazy X of an AnnDataOOM; ``None`` for in-memory data (scanpy's turn)."""
    if not hasattr(adata, "var") or not hasattr(adata, "obs"):
        raise TypeError(
            f"{name} expects an AnnData or AnnDataOOM, got {type(adata).__name__}")
    return get_array(adata)


# -- the recipes ----------------------------------------------------------------------


@doc_params(adata=doc_adata, plot=_DOC_PLOT, copy=doc_copy)
@with_pass_bars("recipe_zheng17")
def recipe_zheng17(
    adata,
    *,
    n_top_genes: int = 1000,
    log: bool = True,
    plot: bool = False,
    copy: bool = False,
):
    """Normalize and filter as Zheng et al. (2017) — scanpy's ``recipe_zheng17``.

    The Cell Ranger R Kit preprocessing, on data that are not yet
    logarithmized (else pass ``log=False``):

    1. ``filter_genes(min_counts=1)`` (``var['n_counts']``);
    2. ``normalize_total`` to the median total, totals' size factors in
       ``obs['n_counts_all']``;
    3. the ``n_top_genes`` genes of highest normalized dispersion
       (``flavor='cell_ranger'``, as scanpy's ``filter_genes_dispersion``
       with ``log=False``) are kept;
    4. ``normalize_total`` again, ``log1p`` (if ``log``), ``scale``
       (``var['mean']``, ``var['std']``).

    Parameters
    ----------
    {adata}
    n_top_genes
        Number of genes to keep (ties at the cutoff are all kept, as scanpy).
    log
        Take the logarithm.
    {plot}
    {copy}

    Returns
    -------
    ``None`` or the copy.

    Notes
    -----
    Six passes over the data (gene counts, cell totals, gene sums and
    sums of squares, cell totals of the kept genes, scale's gene moments);
    X stays lazy.
    ``n_top_genes`` is checked before anything changes: not an integer gives
    ``TypeError``, below 1 or above the number of genes ``ValueError`` (scanpy
    gives ``IndexError`` or keeps every gene).
    """
    x = _lazy_x(adata, "recipe_zheng17")
    if x is None:
        import scanpy as sc

        return sc.pp.recipe_zheng17(adata, n_top_genes=n_top_genes, log=log, plot=plot,
                                    copy=copy)
    _check_n_top_genes(n_top_genes, adata.n_vars)
    if copy:
        adata = adata.copy()
    filter_genes(adata, min_counts=1)
    normalize_total(adata, key_added="n_counts_all")
    result = _filter_genes_dispersion(get_array(adata), flavor="cell_ranger",
                                      n_top_genes=n_top_genes, log=False)
    if plot:
        _plot(result, log=True)
    adata._inplace_subset_var(result.gene_subset)
    normalize_total(adata)
    if log:
        log1p(adata)
    scale(adata)
    return adata if copy else None


@doc_params(adata=doc_adata, plot=_DOC_PLOT, copy=doc_copy)
@with_pass_bars("recipe_seurat")
def recipe_seurat(adata, *, log: bool = True, plot: bool = False, copy: bool = False):
    """Normalize and filter as Seurat (Satija et al. 2015) — scanpy's ``recipe_seurat``.

    On data that are not yet logarithmized (else pass ``log=False``):

    1. ``filter_cells(min_genes=200)`` (``obs['n_genes']``),
       ``filter_genes(min_cells=3)`` (``var['n_cells']``);
    2. ``normalize_total(target_sum=1e4)``;
    3. keep the genes with mean in (0.0125, 3) and normalized dispersion
       above 0.5 (``flavor='seurat'``, as scanpy's ``filter_genes_dispersion``
       with ``log=not log``);
    4. ``log1p`` (if ``log``), ``scale(max_value=10)`` (``var['mean']``,
       ``var['std']``).

    Parameters
    ----------
    {adata}
    log
        Logarithmize the data.
    {plot}
    {copy}

    Returns
    -------
    ``None`` or the copy.

    Notes
    -----
    Streamed passes over the data (counts per cell and gene, cell totals,
    gene sums and sums of squares, scale's gene moments); X stays lazy.
    """
    x = _lazy_x(adata, "recipe_seurat")
    if x is None:
        import scanpy as sc

        return sc.pp.recipe_seurat(adata, log=log, plot=plot, copy=copy)
    if copy:
        adata = adata.copy()
    filter_cells(adata, min_genes=200)
    filter_genes(adata, min_cells=3)
    normalize_total(adata, target_sum=1e4)
    result = _filter_genes_dispersion(get_array(adata), flavor="seurat", min_mean=0.0125,
                                      max_mean=3, min_disp=0.5, log=not log)
    if plot:
        _plot(result, log=not log)
    adata._inplace_subset_var(result.gene_subset)
    if log:
        log1p(adata)
    scale(adata, max_value=10)
    return adata if copy else None


# -- Weinreb et al. (2017) ------------------------------------------------------------


def _normalize_weinreb(x, max_fraction):
    """Scanpy's ``normalize_per_cell_weinreb16_deprecated(mult_with_mean=True)``, lazily.

    Totals per cell, the genes never above ``max_fraction`` of a cell's total,
    totals over those genes, then ``x / tc * mean(total)`` rounded in the
    matrix's type at each step as numpy does (three passes).
    """
    dt = x.dtype if is_float(x.dtype) else np.dtype(np.float64)
    if not is_float(x.dtype):  # numpy divides integers in float64
        x = transform(x, _oom.lazy_cast, "float64")
    counts = passes.row_sums(x).astype(dt)
    threshold = (counts * dt.type(max_fraction)).astype(np.float64)
    keep = np.flatnonzero(passes.count_above(x, threshold) == 0).astype(np.int64)
    tc = passes.positive_counts(x._subset(None, keep))[0].astype(dt)
    out = transform(x, _oom.lazy_normalize, tc.astype(np.float64))
    return transform(out, _oom.lazy_multiply, float(np.mean(counts, dtype=dt)),
                     dtype=str(dt))


@doc_params(adata=doc_adata, copy=doc_copy)
@with_pass_bars("recipe_weinreb17")
def recipe_weinreb17(
    adata,
    *,
    log: bool = True,
    mean_threshold: float = 0.01,
    cv_threshold: int = 2,
    n_pcs: int = 50,
    svd_solver="randomized",
    random_state=0,
    copy: bool = False,
):
    """Normalize and filter as Weinreb et al. (2017) — scanpy's ``recipe_weinreb17``.

    Dense X only (as scanpy: a sparse X raises ``ValueError``). On data that
    are not yet logarithmized (else pass ``log=False``):

    1. ``log1p`` (if ``log``);
    2. each cell divided by its total over the genes that never exceed 5 %
       of a cell's total, times the mean total per cell;
    3. keep the genes with mean above ``mean_threshold`` and coefficient of
       variation (population std over mean + 1e-4) above ``cv_threshold``;
    4. ``obsm['X_pca']``: ``n_pcs`` principal components of the z-scored
       genes (population std + 1e-4); X keeps the normalized values.

    Parameters
    ----------
    {adata}
    log
        Logarithmize the data.
    mean_threshold
        Minimum gene mean.
    cv_threshold
        Minimum coefficient of variation.
    n_pcs
        Number of principal components.
    svd_solver
        Accepted for compatibility: the PCA is exact (see :func:`~anndataoom.pp.pca`),
        where scanpy's default ``'randomized'`` approximates it.
    random_state
        Passed on to the PCA.
    {copy}

    Returns
    -------
    ``None`` or the copy.
    """
    x = _lazy_x(adata, "recipe_weinreb17")
    if x is None:
        import scanpy as sc

        return sc.pp.recipe_weinreb17(adata, log=log, mean_threshold=mean_threshold,
                                      cv_threshold=cv_threshold, n_pcs=n_pcs,
                                      svd_solver=svd_solver, random_state=random_state,
                                      copy=copy)
    if x.is_sparse:
        raise ValueError("`recipe_weinreb16 does not support sparse matrices.")
    if copy:
        adata = adata.copy()
    if log:
        log1p(adata)
    x = _normalize_weinreb(get_array(adata), max_fraction=0.05)
    set_matrix(adata, x)
    dt = x.dtype
    n = x.shape[0]
    mean, var = _gene_mean_var(x)
    pop_std = np.sqrt(var * ((n - 1) / n)) if n > 1 else np.zeros_like(var)
    mean, pop_std = mean.astype(dt), pop_std.astype(dt)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = pop_std / (mean + dt.type(0.0001))
    keep = np.flatnonzero((mean > mean_threshold) & (cv > cv_threshold))
    if keep.size == 0:
        raise ValueError(f"no gene has mean > {mean_threshold} and coefficient of variation "
                         f"> {cv_threshold}: nothing is left for the PCA (scanpy fails there too)")
    adata._inplace_subset_var(keep)
    x = get_array(adata)
    z = transform(x, _oom.lazy_scale, mean[keep].astype(np.float64),
                  (pop_std[keep] + dt.type(0.0001)).astype(np.float64), True, None)
    adata.obsm["X_pca"] = pca(z, n_comps=n_pcs, svd_solver=svd_solver,
                              random_state=random_state)
    return adata if copy else None
