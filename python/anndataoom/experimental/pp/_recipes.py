"""``recipe_pearson_residuals``: Pearson-residual gene selection, residuals and PCA."""

from __future__ import annotations

from types import MappingProxyType

from anndataoom._progress import with_pass_bars
from anndataoom.experimental.pp._highly_variable_genes import highly_variable_genes
from anndataoom.experimental.pp._normalization import normalize_pearson_residuals, store_pca
from anndataoom.pp._backed import get_array
from anndataoom.pp._docs import doc_check_values, doc_dist_params, doc_params
from anndataoom.pp._pca import pca

__all__ = ["recipe_pearson_residuals"]


@doc_params(dist_params=doc_dist_params, check_values=doc_check_values)
@with_pass_bars("recipe_pearson_residuals")
def recipe_pearson_residuals(
    adata,
    *,
    theta: float = 100,
    clip: float | None = None,
    n_top_genes: int = 1000,
    batch_key: str | None = None,
    chunksize: int = 1000,
    n_comps: int | None = 50,
    random_state=0,
    kwargs_pca=MappingProxyType({}),
    check_values: bool = True,
    inplace: bool = True,
):
    """Gene selection, normalization and PCA by analytic Pearson residuals (scanpy's recipe).

    :func:`~anndataoom.experimental.pp.highly_variable_genes` selects
    ``n_top_genes`` genes; their residuals stay lazy and
    :func:`anndataoom.pp.pca` streams them. ``X`` is not changed.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` whose ``X`` holds counts, or an
        in-memory AnnData (handed over to scanpy).
    {dist_params}
    n_top_genes
        Number of genes to select.
    batch_key
        ``obs`` column: genes are ranked per batch and the ranks combined.
    chunksize
        Accepted for scanpy compatibility; blocks are sized by the core.
    n_comps
        Number of principal components.
    random_state
        Seed of the PCA (see :func:`anndataoom.pp.pca`).
    kwargs_pca
        More keyword arguments for :func:`anndataoom.pp.pca`.
    {check_values}
    inplace
        Store the results in ``adata``; otherwise return them.

    Returns
    -------
    ``None``, or with ``inplace=False`` a tuple of an
    :class:`~anndataoom.AnnDataOOM` (the selected genes, ``X`` the lazy
    residuals, with the PCA results) and the gene selection's
    :class:`~pandas.DataFrame`. In place, the gene selection's ``var``
    columns and ``uns['hvg']``, ``obsm['X_pca']``, ``varm['PCs']`` (zeros
    for genes not selected), ``uns['pca']`` and
    ``uns['pearson_residuals_normalization']`` are set; as in
    :func:`~anndataoom.experimental.pp.normalize_pearson_residuals_pca`, the
    dense residuals (scanpy's ``pearson_residuals_df``) are not stored.
    """
    if get_array(adata, None) is None:
        import scanpy as sc

        return sc.experimental.pp.recipe_pearson_residuals(
            adata, theta=theta, clip=clip, n_top_genes=n_top_genes, batch_key=batch_key,
            chunksize=chunksize, n_comps=n_comps, random_state=random_state,
            kwargs_pca=kwargs_pca, check_values=check_values, inplace=inplace)
    hvg_args = dict(theta=theta, clip=clip, n_top_genes=n_top_genes, batch_key=batch_key,
                    chunksize=chunksize, check_values=check_values)
    if inplace:
        highly_variable_genes(adata, **hvg_args, inplace=True)
        mask = adata.var["highly_variable"].to_numpy()
    else:
        hvg = highly_variable_genes(adata, **hvg_args, inplace=False)
        mask = hvg["highly_variable"].to_numpy()
    adata_pca = adata[:, mask]
    normalize_pearson_residuals(adata_pca, theta=theta, clip=clip, check_values=check_values)
    pca(adata_pca, n_comps=n_comps, random_state=random_state, **kwargs_pca)
    if not inplace:
        return adata_pca, hvg
    store_pca(adata, adata_pca, mask)
    return None
