"""Test helpers: synthetic ``.h5ad`` generators and comparisons with in-memory results."""

from anndataoom.testing._assert import (
    FORMATS,
    assert_adata_equal,
    assert_frame_close,
    assert_x_close,
    assert_x_equal,
    dense,
    dir_listing,
)
from anndataoom.testing._cellranger import write_10x_h5
from anndataoom.testing._embedding import neighbour_preservation
from anndataoom.testing._gen import gen_h5ad, pbmc_like_counts

__all__ = [
    "FORMATS",
    "assert_adata_equal",
    "assert_frame_close",
    "assert_x_close",
    "assert_x_equal",
    "dense",
    "dir_listing",
    "gen_h5ad",
    "neighbour_preservation",
    "pbmc_like_counts",
    "write_10x_h5",
]
