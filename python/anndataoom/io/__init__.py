"""Reading and writing ``.h5ad`` files and ``.zarr`` stores lazily; reading 10x, MTX and loom."""

from anndataoom.io._10x import read_10x_h5
from anndataoom.io._concat_on_disk import concat_on_disk
from anndataoom.io._loom import read_loom
from anndataoom.io._mtx import read_10x_mtx, read_mtx
from anndataoom.io._read import read, read_h5ad, read_zarr
from anndataoom.io._write import PendingWrite, start_write_h5ad, write_h5ad, write_zarr

__all__ = ["PendingWrite", "concat_on_disk", "read", "read_10x_h5", "read_10x_mtx", "read_h5ad",
           "read_loom", "read_mtx", "read_zarr", "start_write_h5ad", "write_h5ad", "write_zarr"]
