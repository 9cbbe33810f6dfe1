"""Exceptions raised when reading files (defined by the Rust extension).

``AnnDataReadError`` subclasses :class:`OSError` (a file that cannot be read
as HDF5 AnnData: a directory, empty, truncated, not HDF5);
``AnnDataFormatError`` subclasses :class:`ValueError` (readable HDF5 whose
content is not valid AnnData).
"""

from anndataoom._oom import AnnDataFormatError, AnnDataReadError

__all__ = ["AnnDataReadError", "AnnDataFormatError"]
