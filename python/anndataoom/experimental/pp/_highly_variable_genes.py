"""``experimental.pp.highly_variable_genes``: Pearson-residual gene selection."""

from __future__ import annotations

from anndataoom.pp._docs import doc_check_values, doc_dist_params, doc_params
from anndataoom.pp._hvg import highly_variable_genes as _hvg

__all__ = ["highly_variable_genes"]


@doc_params(dist_params=doc_dist_params, check_values=doc_check_values)
def highly_variable_genes(
    adata,
    *,
    theta: float = 100,
    clip: float | None = None,
    n_top_genes: int | None = None,
    batch_key: str | None = None,
    chunksize: int = 1000,
    flavor: str = "pearson_residuals",
    check_values: bool = True,
    layer: str | None = None,
    subset: bool = False,
    inplace: bool = True,
):
    """Select highly variable genes by analytic Pearson residuals (scanpy's experimental one).

    The same as :func:`anndataoom.pp.highly_variable_genes` with
    ``flavor="pearson_residuals"``: two streamed passes over the counts,
    the residuals are never stored.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` whose ``X`` (or ``layer``) holds
        counts, or an in-memory AnnData (handed over to scanpy).
    {dist_params}
    n_top_genes
        Number of genes to select (required).
    batch_key
        ``obs`` column: genes are ranked per batch and the ranks combined.
    chunksize
        Accepted for scanpy compatibility; blocks are sized by the core.
    flavor
        Only ``"pearson_residuals"`` (as in scanpy).
    {check_values}
    layer
        Use this layer instead of ``X``.
    subset
        Keep only the selected genes.
    inplace
        Write the results to ``var`` and ``uns['hvg']``; otherwise return them.

    Returns
    -------
    ``None``, or a :class:`~pandas.DataFrame` with ``inplace=False``. Sets
    ``var['highly_variable']``, ``means``, ``variances``,
    ``residual_variances``, ``highly_variable_rank`` (and with a
    ``batch_key``, ``highly_variable_nbatches`` and
    ``highly_variable_intersection``), and ``uns['hvg']``.
    """
    if flavor != "pearson_residuals":  # scanpy's check and words
        raise ValueError(
            "This is an experimental API and only `flavor=pearson_residuals` is available.")
    return _hvg(adata, theta=theta, clip=clip, n_top_genes=n_top_genes, batch_key=batch_key,
                chunksize=chunksize, flavor=flavor, check_values=check_values, layer=layer,
                subset=subset, inplace=inplace)
