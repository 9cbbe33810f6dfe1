"""Per-column mean and variance of a matrix, kept for the column subsets that follow.

seurat's ``highly_variable_genes`` pass reads the log data once; asked to,
it also sums the values as stored (before its ``expm1``), which are
exactly the sums ``scale`` needs for the genes chosen. Each column's sums
add the same rows in the same order whatever other columns are selected,
so ``scale`` after the HVG subset gets the numbers a pass of its own would
(tested bit for bit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ColMoments:
    """``mean`` and ``var`` (ddof 1) of each column, over all rows."""

    mean: np.ndarray
    var: np.ndarray

    def take_cols(self, cols: np.ndarray) -> ColMoments:
        """Keep the moments of ``cols``."""
        return ColMoments(self.mean[cols], self.var[cols])
