"""Plots with scanpy's names whose data is streamed from disk."""

from anndataoom.pl._highest_expr_genes import highest_expr_genes

__all__ = ["highest_expr_genes"]
