"""``combat``: ComBat batch correction as a lazy transform (scanpy's ``pp.combat``).

scanpy densifies X (genes × cells, float64) and computes everything in
memory.  Here the same estimates come from two streamed passes:

1. ``DᵀX`` for the batch/covariate design ``D`` (the least-squares fit
   ``B = (DᵀD)⁻¹DᵀX`` behind the grand mean and the covariate effects);
2. per-batch sums and sums of squares of the residual ``r = x − m``
   (``m``: grand mean plus covariate fit), a lazy ``lazy_regress`` view.

The pooled variance, the standardised data's per-batch means and
variances, the priors and the iterative empirical-Bayes solution (scanpy's
``_it_sol``) are then small ``n_batches × n_genes`` computations, and the
adjustment is a lazy Rust op (``lazy_combat``) applied per block: each row
knows its batch and covariates.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from anndataoom import _distributed as passes
from anndataoom import _oom
from anndataoom._progress import with_pass_bars
from anndataoom.pp._backed import get_array, set_matrix, transform
from anndataoom.pp._docs import doc_lazy, doc_params

__all__ = ["combat"]

#: Iterations of the empirical-Bayes solver before giving up (scanpy has no
#: cap; this only turns a non-converging fit into an error instead of a hang).
MAX_ITER = 10_000


def _check(adata, key, covariates) -> None:
    """Raise scanpy's errors for a missing key or bad covariates."""
    if key not in adata.obs:
        raise ValueError(f"Could not find the key {key!r} in adata.obs")
    if covariates is not None:
        cov_exist = np.isin(covariates, adata.obs.columns)
        if np.any(~cov_exist):
            missing = np.array(covariates)[~cov_exist].tolist()
            raise ValueError(f"Could not find the covariate(s) {missing!r} in adata.obs")
        if key in covariates:
            raise ValueError("Batch key and covariates cannot overlap")
        if len(covariates) != len(set(covariates)):
            raise ValueError("Covariates must be unique")
    if adata.obs[key].isna().any():
        raise ValueError(f"adata.obs[{key!r}] has missing values: every cell needs a batch")


def _it_sol(ssd, mean, n, g_hat, d_hat, *, g_bar, t2, a, b, conv=1e-4):
    """Scanpy's iterative posterior means of γ and δ for one batch, from moments.

    ``Σ(s − g)²`` over the batch's cells is ``ssd + n·(mean − g)²`` (``ssd``:
    sum of squared deviations from the batch mean), so the standardised
    data itself is not needed.  The stopping rule is scanpy's, including
    that a NaN change (a gene with ``g_old = 0``) ends the loop.
    """
    g_old, d_old = g_hat.copy(), d_hat.copy()
    g_new, d_new = g_old, d_old
    change, count = 1.0, 0
    with np.errstate(divide="ignore", invalid="ignore"):
        while change > conv:
            if count >= MAX_ITER:
                raise RuntimeError(f"combat's empirical-Bayes fit did not converge in {MAX_ITER} "
                                   "iterations")
            g_new = (t2 * n * g_hat + d_old * g_bar) / (t2 * n + d_old)
            sum2 = ssd + n * (mean - g_new) ** 2
            d_new = (0.5 * sum2 + b) / (n / 2.0 + a - 1.0)
            change = max((abs(g_new - g_old) / g_old).max(), (abs(d_new - d_old) / d_old).max())
            g_old, d_old = g_new, d_new
            count += 1
    return g_new, d_new


def _priors(delta_hat):
    """Scanpy's ``_aprior``/``_bprior`` (pandas ``var``: ddof 1)."""
    m = delta_hat.mean()
    s2 = delta_hat.var(ddof=1)
    return (2 * s2 + m**2) / s2, (m * s2 + m**3) / s2


@doc_params(lazy=doc_lazy)
@with_pass_bars("combat")
def combat(adata, key: str = "batch", *, covariates: Collection[str] | None = None,
           inplace: bool = True):
    """ComBat batch-effect correction (scanpy's ``combat``), out of core.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` (an in-memory AnnData is handed
        over to scanpy).
    key
        Categorical column of ``adata.obs`` holding the batch.
    covariates
        Further ``obs`` columns kept in the model, as scanpy's ``covariates``.
        A categorical one is coded with all its levels (scanpy's design), which
        is rank-deficient next to the batches and refused: give it as numeric
        indicator columns without one level.
    inplace
        Replace ``adata.X``; otherwise return the corrected matrix.

    Returns
    -------
    ``None``, or (``inplace=False``) the corrected matrix as a lazy
    float64 :class:`~anndataoom.BackedArray` (scanpy returns a dense
    ``ndarray``; call ``.toarray()`` for one). Equal to scanpy's result up
    to float rounding (≈1e-10 relative).

    Raises
    ------
    ValueError
        As scanpy: unknown ``key`` or covariates, overlapping or repeated
        covariates; also when a cell has no batch, or the design of batches
        and covariates is rank-deficient (scanpy returns round-off there).

    {lazy}
    The corrected matrix is dense (every value shifts), like scanpy's.
    """
    x = get_array(adata)
    if x is None:
        import scanpy as sc

        return sc.pp.combat(adata, key, covariates=covariates, inplace=inplace)
    _check(adata, key, covariates)
    from scanpy.preprocessing._combat import _design_matrix

    adata._sanitize()
    model = adata.obs[[key, *(covariates if covariates else [])]]
    groups = model.groupby(key, observed=True).indices
    levels = list(groups)
    n_batch = len(levels)
    n_b = np.array([len(groups[lv]) for lv in levels], dtype=np.float64)
    n = float(n_b.sum())
    codes = np.empty(adata.n_obs, dtype=np.uint32)
    for i, lv in enumerate(levels):
        codes[groups[lv]] = i
    design = np.ascontiguousarray(_design_matrix(model, key, levels).to_numpy(np.float64))
    rank = np.linalg.matrix_rank(design)
    if rank < design.shape[1]:
        # scanpy's design codes a categorical covariate with every level next to the
        # batches: its fit is then singular or round-off (scanpy returns that noise).
        raise ValueError(
            f"combat: the design of {key!r} and covariates {list(covariates or [])} has "
            f"{design.shape[1]} columns but rank {rank} (a categorical covariate coded with "
            "all its levels beside the batches, or a covariate that follows the batches), so "
            "no correction can be fitted. Give the covariate as numeric indicator columns "
            "without one of its levels.")

    # pass 1: least squares of X on the design
    dtx = np.asarray(passes.regress_stats(x.matrix, design=design)[0])
    b_hat = np.linalg.inv(design.T @ design) @ dtx
    grand = (n_b / n) @ b_hat[:n_batch]
    fit_design = np.ascontiguousarray(np.column_stack([np.ones(adata.n_obs), design[:, n_batch:]]))
    fit_coef = np.ascontiguousarray(np.vstack([grand, b_hat[n_batch:]]))

    # pass 2: per-batch moments of r = x − (grand mean + covariate fit)
    resid = transform(x, _oom.lazy_regress, fit_coef, "float64", design=fit_design)
    mo = passes.moments(resid, codes, n_batch)
    s1, s2 = mo["sum"], mo["sumsq"]
    shift = b_hat[:n_batch] - grand  # D·B − m per batch
    var_pooled = (s2 - 2 * shift * s1 + n_b[:, None] * shift**2).sum(axis=0) / n
    zero = var_pooled == 0
    sd = np.sqrt(var_pooled)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(zero, 0.0, s1 / n_b[:, None] / sd)  # per-batch mean of s
        ssd = np.where(zero, 0.0, (s2 - s1**2 / n_b[:, None]) / var_pooled)
    ssd = np.maximum(ssd, 0.0)
    delta_hat = ssd / (n_b[:, None] - 1)
    gamma_hat = mean
    gamma_bar = gamma_hat.mean(axis=1)
    t2 = gamma_hat.var(axis=1)
    gamma_star = np.empty_like(gamma_hat)
    delta_star = np.empty_like(delta_hat)
    for i in range(n_batch):
        a, b = _priors(delta_hat[i])
        gamma_star[i], delta_star[i] = _it_sol(
            ssd[i], mean[i], n_b[i], gamma_hat[i], delta_hat[i],
            g_bar=gamma_bar[i], t2=t2[i], a=a, b=b)

    out = transform(x, _oom.lazy_combat, fit_design, fit_coef, codes, sd,
                    np.ascontiguousarray(gamma_star), np.ascontiguousarray(np.sqrt(delta_star)))
    if not inplace:
        return out
    set_matrix(adata, out)
    return None
