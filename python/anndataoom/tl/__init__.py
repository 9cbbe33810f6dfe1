"""Tools with scanpy's names, arguments and result locations.

``rank_genes_groups`` and ``filter_rank_genes_groups`` stream X through
the Rust core and never load it whole (an in-memory AnnData is handed over
to scanpy); ``umap`` and ``leiden`` work on the neighbourhood graph of
``obsp`` in Rust.
"""

from anndataoom.tl._filter_rank_genes_groups import filter_rank_genes_groups
from anndataoom.tl._leiden import leiden
from anndataoom.tl._rank_genes_groups import rank_genes_groups
from anndataoom.tl._umap import umap

__all__ = ["filter_rank_genes_groups", "leiden", "rank_genes_groups", "umap"]
