"""Analytic Pearson residuals (``scanpy.experimental.pp``), out of core.

The residuals of an :class:`~anndataoom.AnnDataOOM` are a lazy matrix
computed block by block on read, so the dense ``n_obs × n_vars`` result is
never held; PCA streams it. An in-memory AnnData is handed over to scanpy.
"""

from anndataoom.experimental.pp._highly_variable_genes import highly_variable_genes
from anndataoom.experimental.pp._normalization import (
    normalize_pearson_residuals,
    normalize_pearson_residuals_pca,
)
from anndataoom.experimental.pp._recipes import recipe_pearson_residuals

__all__ = [
    "highly_variable_genes",
    "normalize_pearson_residuals",
    "normalize_pearson_residuals_pca",
    "recipe_pearson_residuals",
]
