"""The ``chunked_*`` functions of anndataoom 0.1.8, as omicverse 2.3.2 calls them.

Thin wrappers over the Rust kernels and lazy ops of :mod:`anndataoom.pp`
that keep 0.1.8's names, arguments and result keys (``obs['nUMIs']``,
``layers['scaled']``, ``uns['_pearson_precompute']``, …), plus the five
functions omicverse 2.3.2 imports that 0.1.8 never had.
"""

from anndataoom._seed._centered import CenteredSparseArray
from anndataoom._seed._hvg import (
    chunked_highly_variable_features_pegasus,
    chunked_highly_variable_genes_dispersion,
    chunked_highly_variable_genes_pearson,
    chunked_mean_var,
)
from anndataoom._seed._normalize import (
    chunked_log1p,
    chunked_normalize_pearson_residuals,
    chunked_normalize_total,
)
from anndataoom._seed._qc import (
    chunked_gene_group_pct,
    chunked_identify_robust_genes,
    chunked_qc_metrics,
)
from anndataoom._seed._regress import chunked_regress
from anndataoom._seed._scale_pca import chunked_pca, chunked_scale
from anndataoom._seed._scrublet import chunked_scrublet_prepare

__all__ = [
    "CenteredSparseArray",
    "chunked_gene_group_pct",
    "chunked_highly_variable_features_pegasus",
    "chunked_highly_variable_genes_dispersion",
    "chunked_highly_variable_genes_pearson",
    "chunked_identify_robust_genes",
    "chunked_log1p",
    "chunked_mean_var",
    "chunked_normalize_pearson_residuals",
    "chunked_normalize_total",
    "chunked_pca",
    "chunked_qc_metrics",
    "chunked_regress",
    "chunked_scale",
    "chunked_scrublet_prepare",
]
