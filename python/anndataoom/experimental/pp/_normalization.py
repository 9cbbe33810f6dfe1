"""Analytic Pearson residuals as a lazy matrix, and the PCA on them.

One pass gathers the cell and gene totals (and the count check); the
residuals ``(x − μ)/√(μ + μ²/θ)``, ``μ = cell total · gene total / total``,
clipped to ``±clip``, are a lazy transform evaluated in float64 on every
read, so PCA streams them like any dense matrix.
"""

from __future__ import annotations

import warnings
from types import MappingProxyType

import numpy as np

from anndataoom import _oom
from anndataoom._distributed import run_pass
from anndataoom._progress import with_pass_bars
from anndataoom.pp._backed import get_array, set_matrix, wrap
from anndataoom.pp._docs import doc_check_values, doc_dist_params, doc_params
from anndataoom.pp._pca import _empty, _given, _handle_mask_var, pca

__all__ = ["normalize_pearson_residuals", "normalize_pearson_residuals_pca", "pearson_matrix"]


def pearson_matrix(m, *, theta: float, clip: float | None, check_values: bool):
    """Return the lazy residuals of the counts in ``_oom.Matrix`` ``m`` (checked as scanpy does)."""
    if theta <= 0:
        raise ValueError("Pearson residuals require theta > 0")
    if clip is None:
        clip = float(np.sqrt(int(m.shape[0])))
    if clip < 0:
        raise ValueError("Pearson residuals require `clip>=0` or `clip=None`.")
    r = run_pass(m, _oom.moments).finalize()
    negative = np.any(r["n_nonzero"] > r["n_pos"])
    if check_values and (r["non_integer"] or negative):
        warnings.warn("`normalize_pearson_residuals()` expects raw count data, but non-integers "
                      "were found.", UserWarning, stacklevel=3)
    col_sum = np.ascontiguousarray(r["sum"][0], dtype=np.float64)
    row_sum = np.ascontiguousarray(r["row_sum"], dtype=np.float64)
    return _oom.lazy_pearson_residuals(m, row_sum, col_sum, float(col_sum.sum()), float(theta),
                                       float(clip), "float64")


@doc_params(dist_params=doc_dist_params, check_values=doc_check_values)
@with_pass_bars("normalize_pearson_residuals")
def normalize_pearson_residuals(
    adata,
    *,
    theta: float = 100,
    clip: float | None = None,
    check_values: bool = True,
    layer: str | None = None,
    inplace: bool = True,
    copy: bool = False,
):
    """Analytic Pearson residuals of the counts (scanpy's experimental function).

    Residuals of a negative-binomial offset model with overdispersion
    ``theta`` shared by all genes (Lause et al. 2021), clipped to
    ``±clip``. On an :class:`~anndataoom.AnnDataOOM` the result is a lazy
    dense float64 matrix: one pass gathers the totals, and the residuals
    are computed block by block whenever the matrix is read.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` whose ``X`` (or ``layer``) holds
        counts, or an in-memory AnnData (handed over to scanpy).
    {dist_params}
    {check_values}
    layer
        Use (and replace) this layer instead of ``X``.
    inplace
        Replace ``X`` (or the layer) and set ``uns['pearson_residuals_normalization']``;
        otherwise return the residuals and settings as a dict.
    copy
        Work on and return a copy (not with ``inplace=False``).

    Returns
    -------
    ``None``, the copy, or with ``inplace=False`` a dict with ``X`` (the lazy
    residuals), ``theta``, ``clip`` and ``computed_on``, the keys also set
    in ``uns['pearson_residuals_normalization']``.
    """
    if copy and not inplace:
        raise ValueError("`copy=True` cannot be used with `inplace=False`.")
    x = get_array(adata, layer)
    if x is None:
        import scanpy as sc

        return sc.experimental.pp.normalize_pearson_residuals(
            adata, theta=theta, clip=clip, check_values=check_values, layer=layer,
            inplace=inplace, copy=copy)
    residuals = pearson_matrix(x.matrix, theta=theta, clip=clip, check_values=check_values)
    settings = dict(theta=theta, clip=clip, computed_on=layer if layer else "adata.X")
    if not inplace:
        return dict(X=wrap(residuals), **settings)
    adata = adata.copy() if copy else adata
    set_matrix(adata, residuals, layer)
    adata.uns["pearson_residuals_normalization"] = settings
    return adata if copy else None


@doc_params(dist_params=doc_dist_params, check_values=doc_check_values)
@with_pass_bars("normalize_pearson_residuals_pca")
def normalize_pearson_residuals_pca(
    adata,
    *,
    theta: float = 100,
    clip: float | None = None,
    n_comps: int | None = 50,
    random_state=0,
    kwargs_pca=MappingProxyType({}),
    mask_var=_empty,
    use_highly_variable: bool | None = None,
    check_values: bool = True,
    inplace: bool = True,
):
    """Pearson residuals of the selected genes, then PCA (scanpy's experimental one).

    The residuals of the genes in ``mask_var`` (by default
    ``var['highly_variable']`` when present) stay lazy and
    :func:`anndataoom.pp.pca` streams them; ``X`` is not changed.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` whose ``X`` holds counts, or an
        in-memory AnnData (handed over to scanpy).
    {dist_params}
    n_comps
        Number of principal components.
    random_state
        Seed of the PCA (see :func:`anndataoom.pp.pca`).
    kwargs_pca
        More keyword arguments for :func:`anndataoom.pp.pca`.
    mask_var
        Boolean mask or ``var`` column of the genes to use.
    use_highly_variable
        Deprecated (as in scanpy); use ``mask_var``.
    {check_values}
    inplace
        Store the results in ``adata``; otherwise return them as a new object.

    Returns
    -------
    ``None``, or with ``inplace=False`` an :class:`~anndataoom.AnnDataOOM`
    of the selected genes whose ``X`` is the lazy residuals, with the PCA
    results. Sets ``obsm['X_pca']``, ``varm['PCs']`` (zeros for genes not
    used), ``uns['pca']`` and ``uns['pearson_residuals_normalization']``
    (``theta``, ``clip``, ``computed_on``). scanpy also stores the dense
    residuals there as ``pearson_residuals_df``; that is ``n_obs × n_genes``
    in memory, so it is not stored: the returned object's ``X`` (or
    :func:`normalize_pearson_residuals` with ``inplace=False``) gives them
    lazily.
    """
    if get_array(adata, None) is None:
        import scanpy as sc
        from scanpy._utils import _empty as scanpy_empty

        return sc.experimental.pp.normalize_pearson_residuals_pca(
            adata, theta=theta, clip=clip, n_comps=n_comps, random_state=random_state,
            kwargs_pca=kwargs_pca, mask_var=mask_var if _given(mask_var) else scanpy_empty,
            use_highly_variable=use_highly_variable, check_values=check_values,
            inplace=inplace)
    _, mask = _handle_mask_var(adata, mask_var, use_highly_variable)
    adata_pca = adata if mask is None else adata[:, mask]
    adata_pca = type(adata)(adata_pca.X, obs=adata_pca.obs[[]], var=adata_pca.var[[]])
    normalize_pearson_residuals(adata_pca, theta=theta, clip=clip, check_values=check_values)
    pca(adata_pca, n_comps=n_comps, random_state=random_state, **kwargs_pca)
    if not inplace:
        return adata_pca
    store_pca(adata, adata_pca, mask)
    return None


def store_pca(adata, adata_pca, mask) -> None:
    """Copy the PCA and residual settings of ``adata_pca`` (genes ``mask``) into ``adata``."""
    n_comps = adata_pca.obsm["X_pca"].shape[1]
    if mask is None:
        adata.varm["PCs"] = adata_pca.varm["PCs"]
    else:
        pcs = np.zeros((adata.n_vars, n_comps))
        pcs[mask] = adata_pca.varm["PCs"]
        adata.varm["PCs"] = pcs
    adata.uns["pca"] = adata_pca.uns["pca"]
    adata.uns["pearson_residuals_normalization"] = dict(
        adata_pca.uns["pearson_residuals_normalization"])
    adata.obsm["X_pca"] = adata_pca.obsm["X_pca"]
