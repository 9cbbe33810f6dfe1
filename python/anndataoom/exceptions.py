"""Exceptions anndataoom raises.

``AnnDataReadError`` subclasses :class:`OSError` (a file that cannot be read
as HDF5 AnnData: a directory, empty, truncated, not HDF5);
``AnnDataFormatError`` subclasses :class:`ValueError` (readable HDF5 whose
content is not valid AnnData); both are defined by the Rust extension.
``InMemoryRequiredError`` subclasses :class:`TypeError`: an operation needs
the whole matrix in memory and was refused before changing the object.
"""

from anndataoom._core._guard import InMemoryRequiredError
from anndataoom._oom import AnnDataFormatError, AnnDataReadError

__all__ = ["AnnDataReadError", "AnnDataFormatError", "InMemoryRequiredError"]
