"""Test helpers: synthetic ``.h5ad`` generators (no dependency on the compiled core)."""

from ._gen import gen_h5ad, pbmc_like_counts

__all__ = ["gen_h5ad", "pbmc_like_counts"]
