"""Access to the lazy array behind ``X`` / a layer, and storing a new one.

The preprocessing functions work on the ``BackedArray`` of the chosen
representation: its ``_oom.Matrix`` (``x.matrix``) for the Rust kernels.
When the data is in memory (a
plain ``anndata.AnnData`` or a numpy/scipy ``X``) they hand over to scanpy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["get_array", "get_matrix", "set_matrix", "sum_dtype", "transform", "wrap"]


def _rep(adata, layer=None, use_raw=False):
    if layer is not None and use_raw:
        raise ValueError(
            "Cannot use expression from both layer and raw. You provided:"
            f"use_raw={use_raw!r} and layer={layer!r}"
        )
    if layer is not None:
        if layer not in adata.layers:
            raise KeyError(f"layer {layer!r} not found in adata.layers")
        return adata.layers[layer]
    if use_raw:
        if adata.raw is None:
            raise ValueError("use_raw=True but adata.raw is None")
        return adata.raw.X
    if adata.X is None:
        raise ValueError("adata.X is None (the file has no X): give layer= to use a layer")
    return adata.X


def get_array(adata, layer=None, use_raw=False):
    """Return the lazy ``BackedArray`` of the chosen representation (``None`` if in memory)."""
    x = _rep(adata, layer, use_raw)
    return x if hasattr(x, "matrix") else None


def get_matrix(adata, layer=None, use_raw=False):
    """Return the ``_oom.Matrix`` behind the chosen representation (``None`` if in memory)."""
    return getattr(_rep(adata, layer, use_raw), "matrix", None)


def transform(x, op, *args, **kwargs):
    """``x`` with the lazy transform ``op(x.matrix, *args, **kwargs)`` appended.

    ``op`` is one of the ``_oom.lazy_*`` functions.
    """
    return wrap(op(x.matrix, *args, **kwargs))


def wrap(matrix):
    """Wrap a ``_oom.Matrix`` in the lazy array class matching its transforms."""
    import anndataoom._core as core
    from anndataoom import _oom

    ops = _oom.op_names(matrix)
    if "scale" in ops and hasattr(core, "ScaledBackedArray"):
        cls = core.ScaledBackedArray
    elif ops and hasattr(core, "TransformedBackedArray"):
        cls = core.TransformedBackedArray
    else:
        cls = core.BackedArray
    return cls(matrix, transforms=tuple(ops))


def set_matrix(adata, value, layer=None):
    """Store a lazy array, or a ``_oom.Matrix`` (wrapped), as ``X`` or ``layers[layer]``."""
    x = value if hasattr(value, "matrix") else wrap(value)
    if layer is None:
        adata.X = x
    else:
        adata.layers[layer] = x


def sum_dtype(dtype) -> np.dtype:
    """Return the dtype numpy/scipy give a sum over values of ``dtype`` (ints widen)."""
    return np.zeros(1, dtype=np.dtype(dtype)).sum().dtype


def is_float(dtype) -> bool:
    return np.issubdtype(np.dtype(dtype), np.floating)
