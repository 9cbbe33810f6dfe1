"""Reading and writing ``.h5ad`` files lazily."""

from anndataoom.io._read import read, read_h5ad
from anndataoom.io._write import write_h5ad

__all__ = ["read", "read_h5ad", "write_h5ad"]
