"""Per-row and per-column sums and positive counts of a count matrix, kept across filters.

``calculate_qc_metrics`` reads every value once; when all of them are
non-negative whole numbers (raw counts), its totals and non-zero counts are
exactly ``filter_cells``' and ``filter_genes``' numbers, so those filters
need not read the matrix again. After a row filter the column numbers are
the parent's minus those of the removed rows — exact, because sums of whole
numbers in float64 do not depend on their order — so only the removed rows
(a few, usually) are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Counts:
    """``(row_sum, row_pos, col_sum, col_pos)`` of a matrix of counts."""

    row_sum: np.ndarray
    row_pos: np.ndarray
    col_sum: np.ndarray
    col_pos: np.ndarray

    def astuple(self) -> tuple:
        """The four arrays, in ``_oom.positive_counts_py``'s order."""
        return self.row_sum, self.row_pos, self.col_sum, self.col_pos


@dataclass(frozen=True)
class AfterRowFilter:
    """The counts of ``parent[rows]``, derived when first asked for."""

    parent: Counts
    rows: np.ndarray
    #: ``(row_sum, row_pos, col_sum, col_pos)`` of the removed rows (one pass over them).
    removed: Callable[[np.ndarray], tuple]

    def resolve(self) -> Counts:
        """Subtract the removed rows' column numbers from the parent's."""
        keep = np.zeros(len(self.parent.row_sum), dtype=bool)
        keep[self.rows] = True
        dropped = np.flatnonzero(~keep)
        p = self.parent
        col_sum, col_pos = p.col_sum, p.col_pos
        if len(dropped):
            _, _, d_sum, d_pos = self.removed(dropped)
            col_sum, col_pos = col_sum - d_sum, col_pos - d_pos
        return Counts(p.row_sum[self.rows], p.row_pos[self.rows], col_sum, col_pos)


def after_rows(known: Counts | AfterRowFilter | None, rows: np.ndarray,
               removed: Callable[[np.ndarray], tuple]) -> AfterRowFilter | None:
    """What is known of ``x[rows]`` from what is known of ``x``.

    Only an increasing selection of at most half the rows' removal is worth
    deriving (reading the removed rows must cost less than a pass over the
    kept ones).
    """
    if known is None or len(rows) == 0 or np.any(np.diff(rows) <= 0):
        return None
    parent = known.resolve() if isinstance(known, AfterRowFilter) else known
    if 2 * len(rows) < len(parent.row_sum):
        return None
    return AfterRowFilter(parent, rows, removed)


def resolved(known: Counts | AfterRowFilter | None) -> Counts | None:
    """The counts, computing a pending derivation."""
    return known.resolve() if isinstance(known, AfterRowFilter) else known
