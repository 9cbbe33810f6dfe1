"""HDF5 filter plugins (blosc, zstd, lz4, bitshuffle, ...) from ``hdf5plugin``, when needed.

anndata reads such files once ``hdf5plugin`` is imported, because h5py then
finds its filters.  Our HDF5 is linked into the Rust core, so it is pointed
at the same plugin directory; both happen the first time a file needs it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TypeVar

from anndataoom import _oom

__all__ = ["with_filter_plugins"]

T = TypeVar("T")
# what HDF5 says, through h5py or the core, when a filter cannot be loaded
_NEEDS_PLUGIN = re.compile(f"plugin|not registered|{re.escape(_oom.missing_filter_message())}")


@functools.cache
def _load_hdf5plugin() -> bool:
    try:
        import hdf5plugin  # registers its filters with h5py's HDF5
    except ImportError:
        return False
    _oom.add_filter_plugin_dir(hdf5plugin.PLUGIN_PATH)
    return True


def with_filter_plugins(read: Callable[[], T]) -> T:
    """``read()``; if it failed for want of a filter plugin, again with ``hdf5plugin``'s."""
    try:
        return read()
    except (_oom.AnnDataReadError, _oom.AnnDataFormatError) as e:
        if not _NEEDS_PLUGIN.search(str(e)):
            raise
        if not _load_hdf5plugin():
            if _oom.missing_filter_message() in str(e):
                raise
            raise type(e)(f"{e}; the file needs an HDF5 filter plugin (blosc, zstd, lz4, ...): "
                          "pip install hdf5plugin, and anndataoom loads it") from e
    return read()
