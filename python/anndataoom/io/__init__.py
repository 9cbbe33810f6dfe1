"""Reading and writing ``.h5ad`` files and ``.zarr`` stores lazily."""

from anndataoom.io._read import read, read_h5ad, read_zarr
from anndataoom.io._write import write_h5ad, write_zarr

__all__ = ["read", "read_h5ad", "read_zarr", "write_h5ad", "write_zarr"]
