"""0.1.8-compatible QC helpers.

``chunked_qc_metrics``, ``chunked_gene_group_pct`` and ``chunked_identify_robust_genes``.

All three use the one-pass QC kernel of :func:`anndataoom.pp.calculate_qc_metrics`
(``_oom.qc_metrics``); "detected" means a non-zero value.
"""

from __future__ import annotations

import numpy as np

from anndataoom import _oom
from anndataoom._distributed import run_pass
from anndataoom._seed._common import lazy_matrix

__all__ = ["chunked_qc_metrics", "chunked_gene_group_pct", "chunked_identify_robust_genes"]


def _qc(m, masks: np.ndarray | None = None):
    n_vars = int(m.shape[1])
    if masks is None:
        masks = np.zeros((0, n_vars), dtype=bool)
    return run_pass(m, _oom.qc_metrics, [], np.ascontiguousarray(masks, dtype=bool)).finalize()


def chunked_qc_metrics(adata, *, percent_top=None, chunk_size: int | None = None) -> None:
    """Per-cell and per-gene counts of ``adata.X`` in one pass (anndataoom 0.1.8 API).

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` whose ``X`` holds counts.
    percent_top, chunk_size
        Accepted for compatibility; ignored.

    Returns
    -------
    ``None``. Sets ``obs['nUMIs']`` (float64 total per cell),
    ``obs['detected_genes']`` (int64 non-zero genes per cell) and
    ``var['n_cells']`` (int64 non-zero cells per gene).
    """
    total, nnz, _, _, _, col_nnz, *_ = _qc(lazy_matrix(adata.X))
    adata.obs["nUMIs"] = np.asarray(total, dtype=np.float64)
    adata.obs["detected_genes"] = np.asarray(nnz, dtype=np.int64)
    adata.var["n_cells"] = np.asarray(col_nnz, dtype=np.int64)


def chunked_gene_group_pct(adata, gene_mask, *, chunk_size: int | None = None) -> np.ndarray:
    """Fraction (0–1) of each cell's counts falling in a gene group (anndataoom 0.1.8 API).

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM`.
    gene_mask
        Boolean mask over ``adata.var`` (e.g. ``adata.var['mt'].values``).
    chunk_size
        Accepted for compatibility; ignored.

    Returns
    -------
    float64 array of length ``n_obs``: group counts / total counts, where a
    cell with no counts has total 1 (so its fraction is 0).
    """
    m = lazy_matrix(adata.X)
    mask = np.asarray(gene_mask)
    if mask.dtype != bool:
        mask = np.asarray(mask, dtype=object) == True  # noqa: E712 (NaN/None -> False)
    mask = mask.ravel()
    if mask.shape[0] != int(m.shape[1]):
        raise ValueError(f"gene_mask has length {mask.shape[0]}, adata has {m.shape[1]} genes")
    total, _, _, mask_sum, *_ = _qc(m, mask[None, :])
    total = np.asarray(total, dtype=np.float64).copy()
    total[total == 0] = 1.0
    return np.asarray(mask_sum[:, 0], dtype=np.float64) / total


def chunked_identify_robust_genes(adata, percent_cells: float = 0.05,
                                  chunk_size: int | None = None) -> None:
    """Flag genes expressed in at least ``percent_cells`` % of cells (anndataoom 0.1.8 API).

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM`.
    percent_cells
        Threshold in percent (0–100) of cells.
    chunk_size
        Accepted for compatibility; ignored.

    Returns
    -------
    ``None``. Genes detected in no cell are removed in place; then
    ``var['n_cells']`` (int64), ``var['percent_cells']`` (0–100),
    ``var['robust']`` (``percent_cells >= percent_cells``) and
    ``var['highly_variable_features']`` (= ``robust``) are set.
    """
    col_nnz = _qc(lazy_matrix(adata.X))[5]
    n_cells = np.asarray(col_nnz, dtype=np.int64)
    keep = n_cells > 0
    if not keep.all():
        adata._inplace_subset_var(keep)
        n_cells = n_cells[keep]
    adata.var["n_cells"] = n_cells
    adata.var["percent_cells"] = (adata.var["n_cells"] / adata.n_obs) * 100
    adata.var["robust"] = adata.var["percent_cells"] >= percent_cells
    adata.var["highly_variable_features"] = adata.var["robust"]
