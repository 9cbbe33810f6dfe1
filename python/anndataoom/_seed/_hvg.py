"""0.1.8-compatible gene statistics and highly-variable-gene selection.

``chunked_mean_var``, ``chunked_highly_variable_genes_pearson`` (0.1.8's
columns and ranking), and the three selectors omicverse 2.3.2 calls but
0.1.8 lacks: ``chunked_highly_variable_genes_dispersion`` (delegates to
:func:`anndataoom.pp.highly_variable_genes`, i.e. scanpy's ``seurat`` /
``cell_ranger``) and ``chunked_highly_variable_features_pegasus`` (pegasus'
loess mean–variance selection).  Per-gene statistics are streamed by the
Rust moment and Pearson-residual kernels of :mod:`anndataoom.pp`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from anndataoom import _oom
from anndataoom._distributed import run_pass
from anndataoom._seed._common import lazy_matrix, rep

__all__ = [
    "chunked_mean_var",
    "chunked_highly_variable_genes_pearson",
    "chunked_highly_variable_genes_dispersion",
    "chunked_highly_variable_features_pegasus",
]

_SKIP = np.iinfo(np.uint32).max


def chunked_mean_var(adata, *, layer: str | None = None,
                     chunk_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and sample variance (ddof=1) of ``X`` or ``layer`` in one pass.

    Returns
    -------
    ``(mean, var)``, float64 arrays of length ``n_vars``.
    """
    x = adata.layers[layer] if layer is not None else adata.X
    r = run_pass(lazy_matrix(x), _oom.moments).finalize()
    return (np.asarray(r["mean"][0], dtype=np.float64),
            np.asarray(r["var"][0], dtype=np.float64))


# -- Pearson residuals ---------------------------------------------------------------------


def _usable_precompute(adata, pre, m, layer) -> dict | None:
    """``uns['_pearson_precompute']`` when it can describe matrix ``m``."""
    if not isinstance(pre, dict):
        return None
    if pre.get("n_obs") != int(m.shape[0]) or pre.get("n_vars") != int(m.shape[1]):
        return None
    if layer is None and _oom.op_names(m):
        return None  # X is no longer the counts the precompute was taken from
    return pre


def _residual_variance(m, *, theta, clip, pre=None, groups=None):
    """Σ-pass statistics and the residual variance of the rows in ``groups`` (group 0).

    Returns ``(residual_var, mean, var_ddof0)`` over the selected rows; the
    clip defaults to √(number of selected rows).
    """
    if pre is not None:
        row_sum = np.asarray(pre["sums_cells"], dtype=np.float64)
        col_sum = np.asarray(pre["sums_genes"], dtype=np.float64)
        sq_sum = np.asarray(pre["sq_sums_genes"], dtype=np.float64)
        total = float(pre.get("sum_total", col_sum.sum()))
        n = int(m.shape[0])
    else:
        r = run_pass(m, _oom.moments, groups, 1, row_args=(0,)).finalize()
        row_sum = np.asarray(r["row_sum"], dtype=np.float64)
        col_sum = np.asarray(r["sum"][0], dtype=np.float64)
        sq_sum = np.asarray(r["sumsq"][0], dtype=np.float64)
        total = float(col_sum.sum())
        n = int(r["n"][0])
    if clip is None:
        clip = np.sqrt(n)
    res = _oom.residual_variances(
        m, np.ascontiguousarray(row_sum), np.ascontiguousarray(col_sum[None, :]),
        np.array([total]), float(theta), float(clip), groups)
    mean = col_sum / n
    return np.asarray(res[0], dtype=np.float64), mean, sq_sum / n - mean**2


def chunked_highly_variable_genes_pearson(
    adata,
    *,
    n_top_genes: int = 2000,
    theta: float = 100.0,
    clip: float | None = None,
    batch_key: str | None = None,
    layer: str | None = None,
    chunk_size: int | None = None,
    precomputed: dict | str | None = "auto",
) -> None:
    """Select genes by the variance of their analytic Pearson residuals (anndataoom 0.1.8 API).

    Residuals ``(x − μ)/√(μ + μ²/θ)`` with ``μ`` from cell and gene totals,
    clipped to ``±clip`` (``None`` = √n_obs), on the counts in ``layer``
    (``X`` if ``layer`` is missing).  Two streamed passes (one when the
    totals left by :func:`chunked_normalize_total` in
    ``uns['_pearson_precompute']`` match, with ``precomputed='auto'``).

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM`.
    n_top_genes
        Number of genes to flag.
    theta, clip
        Overdispersion and residual clip.
    batch_key
        ``obs`` column: rank within each batch (each with its own clip
        √n_batch), keep genes by number of batches where they are in the
        top ``n_top_genes``, then by median rank.
    layer
        Layer of counts (e.g. ``'counts'``).
    chunk_size
        Accepted for compatibility; ignored.
    precomputed
        ``'auto'``, ``None`` (recompute) or a dict like ``uns['_pearson_precompute']``.

    Returns
    -------
    None
        Sets ``var['means', 'variances', 'residual_variances',
        'highly_variable_rank', 'highly_variable', 'highly_variable_nbatches',
        'highly_variable_intersection']``; ``variances`` and
        ``residual_variances`` are population variances (ddof=0) and without a
        batch ``highly_variable_rank`` is the 1-based rank of every gene, as 0.1.8.
    """
    m = lazy_matrix(rep(adata, layer))
    if theta <= 0:
        raise ValueError("Pearson residuals require theta > 0")
    if batch_key is None:
        if precomputed == "auto":
            precomputed = _usable_precompute(adata, adata.uns.get("_pearson_precompute"), m,
                                             layer)
        elif precomputed is not None:
            ok = _usable_precompute(adata, precomputed, m, layer="given")
            if ok is None:
                raise ValueError(
                    "Stale precomputed Pearson statistics: their shape does not match the "
                    f"matrix {tuple(int(s) for s in m.shape)}. Was the data subset between "
                    "normalize_total and HVG selection?")
        res, means, variances = _residual_variance(m, theta=theta, clip=clip,
                                                   pre=precomputed)
        df = pd.DataFrame(dict(means=means, variances=variances, residual_variances=res),
                          index=adata.var_names)
        df["highly_variable_rank"] = df["residual_variances"].rank(ascending=False)
        df["highly_variable"] = df["highly_variable_rank"] <= n_top_genes
        df["highly_variable_nbatches"] = 1
        df["highly_variable_intersection"] = df["highly_variable"]
    else:
        from anndataoom.pp._hvg_seurat_v3 import rank_across_batches

        values = adata.obs[batch_key].to_numpy()
        levels = np.unique(values)
        per_batch = []
        for b in levels:
            groups = np.where(values == b, 0, _SKIP).astype(np.uint32)
            per_batch.append(_residual_variance(m, theta=theta, clip=clip, groups=groups)[0])
        median_rank, nbatches = rank_across_batches(np.array(per_batch), n_top_genes)
        res, means, variances = _residual_variance(m, theta=theta, clip=clip)
        df = pd.DataFrame(dict(means=means, variances=variances, residual_variances=res,
                               highly_variable_rank=median_rank,
                               highly_variable_nbatches=nbatches),
                          index=adata.var_names)
        order = df.sort_values(["highly_variable_nbatches", "highly_variable_rank"],
                               ascending=[False, True]).index
        df["highly_variable"] = False
        df.loc[order[:n_top_genes], "highly_variable"] = True
        df["highly_variable_intersection"] = df["highly_variable_nbatches"] == len(levels)
    for col in df.columns:
        adata.var[col] = df[col].to_numpy()


# -- seurat / cell_ranger --------------------------------------------------------------------


def chunked_highly_variable_genes_dispersion(
    adata,
    *,
    flavor: str = "seurat",
    n_top_genes: int | None = None,
    n_bins: int = 20,
    layer: str | None = None,
    min_mean: float = 0.0125,
    max_mean: float = 3,
    min_disp: float = 0.5,
    max_disp: float = np.inf,
    batch_key: str | None = None,
    chunk_size: int | None = None,
) -> None:
    """Dispersion-based selection (``seurat`` / ``cell_ranger``) on log-normalised data.

    Same algorithm, columns and cutoffs as :func:`scanpy.pp.highly_variable_genes`
    (it runs :func:`anndataoom.pp.highly_variable_genes`: one streamed pass
    of per-gene ``expm1`` moments, then scanpy's binning and normalised
    dispersions).

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` with log-normalised ``X`` (or ``layer``).
    flavor
        ``'seurat'`` or ``'cell_ranger'``.
    n_top_genes
        Number of genes to flag; ``None`` uses the mean/dispersion cutoffs.
    n_bins
        Number of mean bins (``seurat``).
    layer
        Use this layer instead of ``X``.
    min_mean, max_mean, min_disp, max_disp
        Cutoffs when ``n_top_genes`` is None.
    batch_key
        ``obs`` column for batch-aware selection (as scanpy).
    chunk_size
        Accepted for compatibility; ignored.

    Returns
    -------
    None
        Sets ``var['highly_variable', 'means', 'dispersions',
        'dispersions_norm']`` (plus ``highly_variable_nbatches`` /
        ``highly_variable_intersection`` with a batch), ``uns['hvg']``, and
        ``var['highly_variable_features']`` (= ``highly_variable``).
    """
    from anndataoom.pp import highly_variable_genes

    if flavor not in ("seurat", "cell_ranger"):
        raise ValueError(f"flavor must be 'seurat' or 'cell_ranger', not {flavor!r}")
    if layer is not None and layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not found in adata.layers")
    lazy_matrix(rep(adata, layer))
    highly_variable_genes(adata, flavor=flavor, n_top_genes=n_top_genes, n_bins=n_bins,
                          layer=layer, min_mean=min_mean, max_mean=max_mean,
                          min_disp=min_disp, max_disp=max_disp, batch_key=batch_key)
    adata.var["highly_variable_features"] = adata.var["highly_variable"].to_numpy()


# -- pegasus ---------------------------------------------------------------------------------


def _fit_loess(x, y, span):
    from skmisc.loess import loess

    try:
        lobj = loess(x, y, span=span, degree=2)
        lobj.fit()
    except ValueError:
        return None
    return lobj


def chunked_highly_variable_features_pegasus(
    adata,
    *,
    n_top: int = 2000,
    span: float = 0.02,
    layer: str | None = None,
    chunk_size: int | None = None,
) -> None:
    """Pegasus' highly-variable-feature selection (``select_hvf_pegasus``, no batch).

    Per gene mean and sample variance (ddof=1) of the log-normalised data
    (one streamed pass).  Over the robust genes (``var['robust']``, from
    :func:`chunked_identify_robust_genes`) a degree-2 loess of variance on
    mean is fitted (``skmisc.loess``; the span grows by 0.01 until the fit
    succeeds); genes are ranked by ``var − fit`` and by ``var / fit``
    (descending) and the ``n_top`` smallest rank sums are flagged.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` with log-normalised ``X``.
    n_top
        Number of features to flag.
    span
        loess span.
    layer
        Use this layer instead of ``X``.
    chunk_size
        Accepted for compatibility; ignored.

    Returns
    -------
    ``None``. Sets ``var['mean']``, ``var['var']``, ``var['hvf_loess']`` (the
    fit; 0 for non-robust genes), ``var['hvf_rank']`` (-1 for non-robust)
    and ``var['highly_variable_features']`` (bool).
    """
    if "robust" not in adata.var:
        raise ValueError("Please run `identify_robust_genes` to identify robust genes")
    if layer is not None and layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not found in adata.layers")
    r = run_pass(lazy_matrix(rep(adata, layer)), _oom.moments).finalize()
    adata.var["mean"] = np.asarray(r["mean"][0], dtype=np.float64)
    adata.var["var"] = np.asarray(r["var"][0], dtype=np.float64)

    robust = np.asarray(adata.var["robust"].to_numpy(), dtype=bool)
    mean = adata.var["mean"].to_numpy()[robust]
    var = adata.var["var"].to_numpy()[robust]
    span_value = span
    while True:
        lobj = _fit_loess(mean, var, span_value)
        if lobj is not None:
            break
        span_value += 0.01
    if span_value > span:
        print(f"Loess span is adjusted from {span:.2f} to {span_value:.2f} to avoid "
              "fitting errors.")
    fitted = np.asarray(lobj.outputs.fitted_values)
    n = int(robust.sum())
    rank1 = np.zeros(n, dtype=int)
    rank2 = np.zeros(n, dtype=int)
    rank1[np.argsort(var - fitted)[::-1]] = range(n)
    rank2[np.argsort(var / fitted)[::-1]] = range(n)
    hvf_rank = rank1 + rank2
    selected = np.zeros(n, dtype=bool)
    selected[np.argsort(hvf_rank)[:n_top]] = True

    loess_col = np.zeros(adata.n_vars)
    loess_col[robust] = fitted
    rank_col = np.full(adata.n_vars, -1, dtype=np.int64)
    rank_col[robust] = hvf_rank
    hvf = np.zeros(adata.n_vars, dtype=bool)
    hvf[robust] = selected
    adata.var["hvf_loess"] = loess_col
    adata.var["hvf_rank"] = rank_col
    adata.var["highly_variable_features"] = hvf
