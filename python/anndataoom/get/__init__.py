"""Getters with scanpy's names: ``aggregate`` (pseudobulk) streamed from disk."""

from anndataoom.get._aggregate import aggregate

__all__ = ["aggregate"]
