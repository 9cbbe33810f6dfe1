"""``filter_cells`` / ``filter_genes``: one counting pass, then a lazy subset."""

from __future__ import annotations

import numpy as np

from anndataoom import _distributed as passes
from anndataoom._progress import with_pass_bars
from anndataoom.pp._backed import get_array, sum_dtype

__all__ = ["filter_cells", "filter_genes"]


def _one_option(options, names):
    if sum(o is not None for o in options) != 1:
        raise ValueError(
            "Only provide one of the optional parameters "
            + ", ".join(f"`{n}`" for n in names)
            + " per call."
        )


def _subset(number, lo, hi):
    if lo is not None:
        return number >= lo
    return number <= hi


def _filter_axis(data, axis: int, counts, number_key, lo_hi, inplace, copy, scanpy_name, kw):
    """Shared body of filter_cells (axis 0) and filter_genes (axis 1).

    ``lo_hi`` is ``((min_counts, max_counts), (min_n, max_n))``; exactly one
    of the four is set.
    """
    (min_counts, max_counts), (min_n, max_n) = lo_hi
    frame = "obs" if axis == 0 else "var"
    x = data if hasattr(data, "matrix") else None
    is_adata = x is None and hasattr(data, frame)
    if is_adata:
        x = get_array(data)
    if x is None:
        import scanpy as sc

        return getattr(sc.pp, scanpy_name)(data, **kw, inplace=inplace, copy=copy)
    row_sum, row_pos, col_sum, col_pos = passes.positive_counts(x)
    sums, positive = (row_sum, row_pos) if axis == 0 else (col_sum, col_pos)
    by_counts = min_n is None and max_n is None
    number = sums.astype(sum_dtype(x.dtype)) if by_counts else positive.astype(np.int64)
    subset = _subset(number, *((min_counts, max_counts) if by_counts else (min_n, max_n)))
    if not is_adata or not inplace:
        return subset, number
    adata = data.copy() if copy else data
    getattr(adata, frame)[counts if by_counts else number_key] = number
    (adata._inplace_subset_obs if axis == 0 else adata._inplace_subset_var)(subset)
    return adata if copy else None


@with_pass_bars("filter_cells")
def filter_cells(
    data,
    *,
    min_counts: int | None = None,
    min_genes: int | None = None,
    max_counts: int | None = None,
    max_genes: int | None = None,
    inplace: bool = True,
    copy: bool = False,
):
    """Filter cells by total counts or number of expressed genes (as scanpy).

    Parameters
    ----------
    data
        An :class:`~anndataoom.AnnDataOOM` (or in-memory AnnData / matrix,
        handed to scanpy).
    min_counts, min_genes, max_counts, max_genes
        Exactly one threshold per call.
    inplace
        Subset ``data`` in place (lazily) and write ``obs['n_counts']`` or
        ``obs['n_genes']``; otherwise return ``(cell_subset, number)``.
    copy
        Deprecated in scanpy; return a filtered copy.

    Returns
    -------
    ``None``, the copy, or ``(cell_subset, number_per_cell)``.
    """
    _one_option([min_genes, min_counts, max_genes, max_counts],
                ["min_counts", "min_genes", "max_counts", "max_genes"])
    kw = dict(min_counts=min_counts, min_genes=min_genes,
              max_counts=max_counts, max_genes=max_genes)
    return _filter_axis(data, 0, "n_counts", "n_genes",
                        ((min_counts, max_counts), (min_genes, max_genes)),
                        inplace, copy, "filter_cells", kw)


@with_pass_bars("filter_genes")
def filter_genes(
    data,
    *,
    min_counts: int | None = None,
    min_cells: int | None = None,
    max_counts: int | None = None,
    max_cells: int | None = None,
    inplace: bool = True,
    copy: bool = False,
):
    """Filter genes by total counts or number of expressing cells (as scanpy).

    Parameters
    ----------
    data
        An :class:`~anndataoom.AnnDataOOM` (or in-memory AnnData / matrix,
        handed to scanpy).
    min_counts, min_cells, max_counts, max_cells
        Exactly one threshold per call.
    inplace
        Subset ``data`` in place (lazily) and write ``var['n_counts']`` or
        ``var['n_cells']``; otherwise return ``(gene_subset, number)``.
    copy
        Deprecated in scanpy; return a filtered copy.

    Returns
    -------
    ``None``, the copy, or ``(gene_subset, number_per_gene)``.
    """
    _one_option([min_cells, min_counts, max_cells, max_counts],
                ["min_counts", "min_cells", "max_counts", "max_cells"])
    kw = dict(min_counts=min_counts, min_cells=min_cells,
              max_counts=max_counts, max_cells=max_cells)
    return _filter_axis(data, 1, "n_counts", "n_cells",
                        ((min_counts, max_counts), (min_cells, max_cells)),
                        inplace, copy, "filter_genes", kw)
