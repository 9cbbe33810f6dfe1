"""``downsample_counts``: lazy, seeded downsampling of counts (scanpy's ``pp.downsample_counts``).

Per cell (``counts_per_cell``) every cell above its target keeps exactly
that many of its counts, drawn uniformly; for a ``total_counts`` target
the per-cell shares are drawn first (a multivariate hypergeometric over
the cell totals, multinomial with ``replace``) from one pass of row sums,
then each cell downsamples to its share.  The draws run in Rust, block by
block, each cell from its own generator seeded by ``random_state`` and its
row, so the result is the same however and wherever it is read.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from anndataoom import _distributed as passes
from anndataoom import _oom
from anndataoom._progress import with_pass_bars
from anndataoom._random import seed_of
from anndataoom.pp._backed import get_array, set_matrix, transform
from anndataoom.pp._docs import doc_lazy, doc_params

__all__ = ["downsample_counts"]


def _per_cell_targets(counts_per_cell, n_obs: int) -> np.ndarray:
    if isinstance(counts_per_cell, (int, np.integer)):
        target = np.full(n_obs, int(counts_per_cell))
    else:
        target = np.asarray(counts_per_cell)
        if target.ndim != 1 or len(target) != n_obs:
            raise ValueError(
                "If provided, 'counts_per_cell' must be either an integer, or coercible to an "
                "`np.ndarray` of length as number of observations by `np.asarray(counts_per_cell)`."
            )
    target = target.astype(np.int64, copy=False)
    if (target < 0).any():
        raise ValueError("counts_per_cell must be non-negative")
    return target.astype(np.uint64)


def _total_targets(x, total_counts: int, seed: int, replace: bool) -> np.ndarray | None:
    """Per-cell shares of ``total_counts`` (``None`` when the matrix holds fewer counts)."""
    if total_counts < 0:
        raise ValueError("total_counts must be non-negative")
    row_sum = passes.row_sums(x)
    if (row_sum < 0).any() or (row_sum != np.round(row_sum)).any():
        raise ValueError("downsample_counts needs non-negative integer counts")
    totals = row_sum.astype(np.int64)
    if totals.sum() < total_counts:
        return None
    rng = np.random.default_rng(seed)
    if replace:
        share = rng.multinomial(total_counts, totals / totals.sum())
    else:
        share = rng.multivariate_hypergeometric(totals, total_counts)
    return share.astype(np.uint64)


@doc_params(lazy=doc_lazy)
@with_pass_bars("downsample_counts")
def downsample_counts(
    adata,
    counts_per_cell: int | Collection[int] | None = None,
    total_counts: int | None = None,
    *,
    random_state=0,
    replace: bool = False,
    copy: bool = False,
):
    """Downsample counts (scanpy's ``downsample_counts``), lazily and reproducibly.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` with counts in ``X`` (an
        in-memory AnnData is handed over to scanpy).
    counts_per_cell
        Target counts per cell (one number or one per cell): every cell
        with more counts keeps exactly this many; the others are unchanged.
    total_counts
        Target total over the whole matrix: when it holds more, counts are
        removed uniformly over all cells until exactly this many remain.
    random_state
        Seed (an int, ``None`` for a fresh one, or a numpy generator). The
        same seed gives the same matrix.
    replace
        Draw the kept counts with replacement.
    copy
        Work on and return a copy.

    Returns
    -------
    ``None`` or the copy. ``X`` becomes the downsampled counts (same dtype,
    zeros dropped from sparse rows).

    Raises
    ------
    ValueError
        Unless exactly one of ``counts_per_cell`` and ``total_counts`` is
        given; for negative targets; when ``X`` holds non-integer or
        negative values (when the matrix is read).

    {lazy}
    Random draws differ from scanpy's (numba's generator, one seed reused
    for every cell), so results agree with scanpy's in distribution and in
    every total, not value by value.
    """
    if (total_counts is None) == (counts_per_cell is None):
        raise ValueError("Must specify exactly one of `total_counts` or `counts_per_cell`.")
    x = get_array(adata)
    if x is None:
        import scanpy as sc

        return sc.pp.downsample_counts(adata, counts_per_cell, total_counts,
                                       random_state=random_state, replace=replace, copy=copy)
    # None means fresh randomness here, as in scanpy's downsample_counts.
    seed = (int(np.random.SeedSequence().generate_state(1, np.uint64)[0]) if random_state is None
            else seed_of(random_state))
    if counts_per_cell is not None:
        target, always = _per_cell_targets(counts_per_cell, adata.n_obs), False
    else:
        target, always = _total_targets(x, int(total_counts), seed, replace), replace
    adata = adata.copy() if copy else adata
    if target is not None:
        set_matrix(adata, transform(x, _oom.lazy_downsample, target, seed, replace, always))
    return adata if copy else None
