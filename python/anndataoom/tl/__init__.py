"""Tools with scanpy's names, arguments and result locations.

``rank_genes_groups`` streams X through the Rust core and never loads it
whole (an in-memory AnnData is handed over to scanpy); ``umap`` and
``leiden`` work on the neighbourhood graph of ``obsp`` in Rust.
"""

from anndataoom.tl._leiden import leiden
from anndataoom.tl._rank_genes_groups import rank_genes_groups
from anndataoom.tl._umap import umap

__all__ = ["leiden", "rank_genes_groups", "umap"]
