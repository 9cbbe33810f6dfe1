"""Helpers shared by the 0.1.8-compatible ``chunked_*`` functions.

Each ``chunked_*`` function finds the lazy :class:`~anndataoom.BackedArray`
it works on, takes its ``_oom.Matrix`` and calls the same Rust kernels and
lazy ops as :mod:`anndataoom.pp`; only the result keys and the small
per-gene post-processing follow anndataoom 0.1.8 (the names omicverse
calls).  ``chunk_size`` arguments are accepted for compatibility and
ignored: the Rust core picks its own block size.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rep", "lazy_matrix", "store", "cast_float32"]


def rep(adata, layer: str | None):
    """``adata.layers[layer]`` when ``layer`` names an existing layer, else ``adata.X``."""
    if layer is not None and layer in adata.layers:
        return adata.layers[layer]
    return adata.X


def lazy_matrix(x, what: str = "X"):
    """Return the ``_oom.Matrix`` behind a lazy array (``TypeError`` for in-memory data)."""
    m = getattr(x, "matrix", None)
    if m is None:
        raise TypeError(
            f"{what} is not a lazy anndataoom array (got {type(x).__name__}); the chunked_* "
            "functions work on objects opened with anndataoom.read(). For in-memory AnnData "
            "use scanpy (or anndataoom.pp, which hands in-memory data to scanpy)."
        )
    return m


def cast_float32(m):
    """``m`` with its output cast to float32 (no-op when it already is)."""
    from anndataoom import _oom

    return m if np.dtype(m.dtype) == np.float32 else _oom.lazy_cast(m, "float32")


def store(adata, m, layer: str | None = None) -> None:
    """Store matrix ``m`` lazily as ``X`` or ``layers[layer]`` (class from its transforms)."""
    from anndataoom.pp._backed import set_matrix

    set_matrix(adata, m, layer)
