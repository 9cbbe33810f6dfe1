"""Tools with scanpy's names, arguments and result locations.

Each function streams X through the Rust core and never loads it whole;
an in-memory AnnData is handed over to scanpy.
"""

from anndataoom.tl._leiden import leiden
from anndataoom.tl._rank_genes_groups import rank_genes_groups

__all__ = ["leiden", "rank_genes_groups"]
