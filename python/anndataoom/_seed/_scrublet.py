"""``chunked_scrublet_prepare``: the bounded in-memory input of scrublet.

omicverse 2.3.2 API.

Scrublet simulates doublets from raw counts of the highly variable genes.
This does the gene/cell filtering, normalisation and HVG selection of
omicverse's in-memory ``_run_scrublet`` lazily (with :mod:`anndataoom.pp`),
then materialises only the counts of the kept cells × HVGs.
"""

from __future__ import annotations

import anndata
import numpy as np

from anndataoom import _oom
from anndataoom._distributed import run_pass
from anndataoom._seed._common import lazy_matrix, rep

__all__ = ["chunked_scrublet_prepare"]


def chunked_scrublet_prepare(
    adata,
    *,
    min_cells: int = 3,
    min_genes: int = 3,
    layer: str | None = None,
    chunk_size: int | None = None,
) -> tuple[anndata.AnnData, np.ndarray, int]:
    """Filter, select HVGs out of core and return the scrublet input in memory.

    Steps (those of scrublet's default preparation): keep genes with a
    positive count in at least ``min_cells`` cells, then cells with at
    least ``min_genes`` such genes; normalise to the median total, log1p,
    and flag HVGs with scanpy's ``seurat`` flavor and default cutoffs.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` whose ``X`` (or ``layer``) holds raw counts.
    min_cells, min_genes
        Filters applied before HVG selection.
    layer
        Take the counts from this layer instead of ``X``.
    chunk_size
        Accepted for compatibility; ignored.

    Returns
    -------
    ``(ad_obs, hvg_mask, n_hvg)``: an in-memory :class:`anndata.AnnData`
    holding the raw counts of the kept cells × HVGs (CSR; ``obs`` and
    ``var`` copied from ``adata``), a boolean mask over ``adata.var``
    flagging those HVGs, and their number.
    """
    from anndataoom._core import AnnDataOOM
    from anndataoom.pp import highly_variable_genes, log1p, normalize_total
    from anndataoom.pp._backed import wrap

    if layer is not None and layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not found in adata.layers")
    m = lazy_matrix(rep(adata, layer))
    col_pos = np.asarray(run_pass(m, _oom.positive_counts).finalize()[3])
    genes = np.flatnonzero(col_pos >= min_cells).astype(np.int64)
    row_pos = np.asarray(run_pass(m.subset(None, genes), _oom.positive_counts).finalize()[1])
    cells = np.flatnonzero(row_pos >= min_genes).astype(np.int64)
    counts = m.subset(cells, genes)

    work = AnnDataOOM(X=wrap(counts), obs=adata.obs.iloc[cells][[]].copy(),
                      var=adata.var.iloc[genes][[]].copy())
    normalize_total(work)
    log1p(work)
    highly_variable_genes(work)
    hv = np.asarray(work.var["highly_variable"].to_numpy(), dtype=bool)
    hv_pos = np.flatnonzero(hv).astype(np.int64)

    X = wrap(counts.subset(None, hv_pos)).to_memory()
    ad_obs = anndata.AnnData(
        X=X,
        obs=adata.obs.iloc[cells].copy(),
        var=adata.var.iloc[genes[hv_pos]].copy(),
    )
    hvg_mask = np.zeros(adata.n_vars, dtype=bool)
    hvg_mask[genes[hv_pos]] = True
    return ad_obs, hvg_mask, int(hv_pos.size)
