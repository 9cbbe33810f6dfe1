"""Preprocessing with scanpy's names, arguments and result locations.

Every function works on an :class:`~anndataoom.AnnDataOOM` in place
(``copy=True`` returns a new one), streams X through the Rust core and
never loads it whole; an in-memory AnnData is handed over to scanpy.
"""

from anndataoom.pp._combat import combat
from anndataoom.pp._downsample import downsample_counts
from anndataoom.pp._filter import filter_cells, filter_genes
from anndataoom.pp._hvg import highly_variable_genes
from anndataoom.pp._log1p import log1p
from anndataoom.pp._neighbors import KnnTransformer, neighbors
from anndataoom.pp._normalize import normalize_total
from anndataoom.pp._pca import pca
from anndataoom.pp._qc import calculate_qc_metrics
from anndataoom.pp._recipes import recipe_seurat, recipe_weinreb17, recipe_zheng17
from anndataoom.pp._regress import regress_out
from anndataoom.pp._scale import scale
from anndataoom.pp._scrublet import scrublet, scrublet_simulate_doublets
from anndataoom.pp._sqrt import sqrt

__all__ = [
    "KnnTransformer",
    "calculate_qc_metrics",
    "combat",
    "downsample_counts",
    "filter_cells",
    "filter_genes",
    "highly_variable_genes",
    "log1p",
    "neighbors",
    "normalize_total",
    "pca",
    "recipe_seurat",
    "recipe_weinreb17",
    "recipe_zheng17",
    "regress_out",
    "scale",
    "scrublet",
    "scrublet_simulate_doublets",
    "sqrt",
]
