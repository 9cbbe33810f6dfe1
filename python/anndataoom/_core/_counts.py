"""Per-row and per-column sums and positive counts of a count matrix, kept across filters.

``calculate_qc_metrics`` reads every value once; when all of them are
non-negative whole numbers (raw counts), its totals and non-zero counts are
exactly the numbers ``filter_cells``, ``filter_genes`` and
``normalize_total`` need, so those steps need not read the matrix again:

- after a row filter, the column numbers are the parent's minus those of
  the removed rows (only those rows are read);
- after a column filter that removes only rare columns (the QC pass keeps
  each column's first ``RARE_KEEP`` entries, see ``oom-core``
  ``kernels::qc::Rare``: all of them for a rare column), the row numbers are
  the parent's minus the removed columns' entries.

Both are exact: sums of whole numbers in float64 do not depend on their
order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rare:
    """Every stored entry of the columns marked ``complete`` (and some of the others)."""

    col: np.ndarray
    row: np.ndarray
    val: np.ndarray
    complete: np.ndarray

    @classmethod
    def from_qc(cls, rows: np.ndarray, vals: np.ndarray, col_nnz: np.ndarray) -> Rare:
        """From QC's ``(n_cols, K)`` first entries per column."""
        keep = rows.shape[1]
        slot = np.arange(keep)[None, :] < np.minimum(col_nnz, keep)[:, None]
        col = np.broadcast_to(np.arange(rows.shape[0])[:, None], rows.shape)[slot]
        return cls(col, rows[slot].astype(np.int64), vals[slot], col_nnz <= keep)

    def take_rows(self, rows: np.ndarray, col_nnz: np.ndarray) -> Rare:
        """Keep the entries of the increasing ``rows``, renumbered; ``col_nnz`` counts theirs.

        A column is complete when all of its entries in ``rows`` are among
        those kept — also one whose first entries were in rows now removed.
        """
        at = np.searchsorted(rows, self.row)
        hit = (at < len(rows)) & (rows[np.minimum(at, len(rows) - 1)] == self.row)
        col = self.col[hit]
        complete = np.bincount(col, minlength=len(col_nnz)) == col_nnz
        return Rare(col, at[hit], self.val[hit], complete)

    def take_cols(self, cols: np.ndarray) -> Rare:
        """Keep the entries of the increasing ``cols``, renumbered."""
        at = np.searchsorted(cols, self.col)
        hit = (at < len(cols)) & (cols[np.minimum(at, len(cols) - 1)] == self.col)
        return Rare(at[hit], self.row[hit], self.val[hit], self.complete[cols])


@dataclass(frozen=True)
class Counts:
    """``(row_sum, row_pos, col_sum, col_pos)`` of a matrix of counts."""

    row_sum: np.ndarray
    row_pos: np.ndarray
    col_sum: np.ndarray
    col_pos: np.ndarray
    rare: Rare | None = None

    def astuple(self) -> tuple:
        """Return the four arrays, in ``_oom.positive_counts``'s order."""
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
        rare = None if p.rare is None else p.rare.take_rows(self.rows, col_pos)
        return Counts(p.row_sum[self.rows], p.row_pos[self.rows], col_sum, col_pos, rare)


def _increasing(idx: np.ndarray) -> bool:
    return len(idx) > 0 and bool(np.all(np.diff(idx) > 0))


def after_rows(known: Counts | AfterRowFilter | None, rows: np.ndarray,
               removed: Callable[[np.ndarray], tuple]) -> AfterRowFilter | None:
    """Derive what is known of ``x[rows]`` from what is known of ``x``.

    Only an increasing selection that removes at most half the rows is
    worth deriving (reading the removed rows must cost less than a pass
    over the kept ones).
    """
    parent = resolved(known)
    if parent is None or not _increasing(rows) or 2 * len(rows) < len(parent.row_sum):
        return None
    return AfterRowFilter(parent, rows, removed)


def after_cols(known: Counts | AfterRowFilter | None, cols: np.ndarray) -> Counts | None:
    """Derive what is known of ``x[:, cols]``: all of it when every removed column is rare."""
    parent = resolved(known)
    if parent is None or parent.rare is None or not _increasing(cols):
        return None
    rare = parent.rare
    gone = np.ones(len(parent.col_sum), dtype=bool)
    gone[cols] = False
    if not rare.complete[gone].all():
        return None
    out = gone[rare.col]
    n = len(parent.row_sum)
    row_sum = parent.row_sum - np.bincount(rare.row[out], weights=rare.val[out], minlength=n)
    row_pos = parent.row_pos - np.bincount(rare.row[out & (rare.val > 0)], minlength=n).astype(
        parent.row_pos.dtype)
    return Counts(row_sum, row_pos, parent.col_sum[cols], parent.col_pos[cols],
                  rare.take_cols(cols))


def resolved(known: Counts | AfterRowFilter | None) -> Counts | None:
    """Return the counts, computing a pending derivation."""
    return known.resolve() if isinstance(known, AfterRowFilter) else known
