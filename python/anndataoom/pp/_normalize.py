"""``normalize_total``: size factors from one pass, then a lazy per-row division."""

from __future__ import annotations

import warnings

import numpy as np

from anndataoom import _distributed as passes
from anndataoom import _oom
from anndataoom._progress import with_pass_bars
from anndataoom.pp._backed import get_array, is_float, set_matrix, transform
from anndataoom.pp._docs import doc_adata, doc_layer, doc_lazy, doc_params

__all__ = ["normalize_total"]


def _size_factors(x, *, exclude_highly_expressed, max_fraction, target_sum):
    """Compute counts per cell divided by ``target_sum``, as scanpy does.

    Values are counted in the normalised type (float32 for integer input),
    the target is the median over all cells (CSR) or over cells with
    counts (dense), and with ``exclude_highly_expressed`` genes holding more
    than ``max_fraction`` of a cell's counts in any cell are left out of the
    totals (two more passes).
    """
    dt = x.dtype if is_float(x.dtype) else np.dtype(np.float32)
    row_sum = passes.row_sums(x)
    counts = row_sum.astype(dt)
    if exclude_highly_expressed:
        if x.is_sparse:
            threshold = max_fraction * counts.astype(np.float64)
        else:
            threshold = (counts * dt.type(max_fraction)).astype(np.float64)
        hi = passes.count_above(x, threshold)
        keep = np.flatnonzero(hi == 0).astype(np.int64)
        counts = passes.positive_counts(x._subset(None, keep))[0].astype(dt)
    if target_sum is None:
        target_sum = np.median(counts) if x.is_sparse else np.median(counts[counts > 0])
    return counts / target_sum


@doc_params(adata=doc_adata, layer=doc_layer, lazy=doc_lazy)
@with_pass_bars("normalize_total")
def normalize_total(
    adata,
    *,
    target_sum: float | None = None,
    exclude_highly_expressed: bool = False,
    max_fraction: float = 0.05,
    key_added: str | None = None,
    layer: str | None = None,
    inplace: bool = True,
    copy: bool = False,
):
    """Normalize counts per cell (scanpy's ``normalize_total``).

    Each cell is divided by its total count over ``target_sum``
    (default: the median total), so all cells end up with the same total.

    Parameters
    ----------
    {adata}
    target_sum
        Total per cell after normalisation; ``None`` = median of the totals.
    exclude_highly_expressed
        Leave genes with more than ``max_fraction`` of a cell's counts (in
        any cell) out of the size factors.
    max_fraction
        See ``exclude_highly_expressed``.
    key_added
        Store the size factors in ``adata.obs[key_added]``.
    {layer}
    inplace
        Replace the matrix (lazily); otherwise return
        ``dict(X=<lazy matrix>, norm_factor=<size factors>)``.
    copy
        Work on and return a copy.

    Returns
    -------
    ``None``, the copy, or the dict described under ``inplace``.

    {lazy}
    """
    if copy:
        if not inplace:
            raise ValueError("`copy=True` cannot be used with `inplace=False`.")
        adata = adata.copy()
    if max_fraction < 0 or max_fraction > 1:
        raise ValueError("Choose max_fraction between 0 and 1.")
    x = get_array(adata, layer)
    if x is None:
        import scanpy as sc

        out = sc.pp.normalize_total(
            adata, target_sum=target_sum, exclude_highly_expressed=exclude_highly_expressed,
            max_fraction=max_fraction, key_added=key_added, layer=layer, inplace=inplace)
        return adata if copy else out
    factors = _size_factors(x, exclude_highly_expressed=exclude_highly_expressed,
                            max_fraction=max_fraction, target_sum=target_sum)
    divisor = factors + (factors == 0)
    out = transform(x, _oom.lazy_normalize, np.asarray(divisor, dtype=np.float64))
    if not np.all(factors > 0):
        warnings.warn("Some cells have zero counts", UserWarning, stacklevel=2)
    if not inplace:
        return dict(X=out, norm_factor=factors)
    if key_added is not None:
        adata.obs[key_added] = factors
    set_matrix(adata, out, layer)
    return adata if copy else None
