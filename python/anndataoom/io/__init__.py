"""Reading and writing ``.h5ad`` files and ``.zarr`` stores lazily."""

from anndataoom.io._concat_on_disk import concat_on_disk
from anndataoom.io._read import read, read_h5ad, read_zarr
from anndataoom.io._write import write_h5ad, write_zarr

__all__ = ["concat_on_disk", "read", "read_h5ad", "read_zarr", "write_h5ad", "write_zarr"]
