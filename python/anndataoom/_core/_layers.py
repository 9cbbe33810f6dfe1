"""``BackedLayers``: a mapping of layer name → lazy (or in-memory) matrix."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping, MutableMapping

import numpy as np

from anndataoom import _oom
from anndataoom._core._backed_array import BackedArray
from anndataoom._core._guard import for_anndata_merge, guard_scanpy
from anndataoom._core._lazy import LazyMatrix

__all__ = ["BackedLayers", "as_matrix_value", "subset_value"]


def as_matrix_value(value, shape: tuple[int, int] | None, what: str):
    """Validate a value for ``X`` or a layer: lazy arrays stay lazy.

    ``_oom.Matrix`` is wrapped in :class:`BackedArray`; numpy/scipy arrays are
    kept in memory (coerced the way anndata does).  Raises ``ValueError`` on a
    shape mismatch.
    """
    if isinstance(value, _oom.Matrix):
        value = BackedArray(value)
    if not isinstance(value, LazyMatrix):
        from anndata._core.storage import coerce_array

        value = coerce_array(value, name=what, allow_array_like=True)
        if shape is not None and getattr(value, "shape", None) != shape:
            n = np.prod(getattr(value, "shape", (0,)))
            if hasattr(value, "reshape") and n == shape[0] * shape[1] and (
                1 in shape and getattr(value, "ndim", 2) == 1
            ):
                value = value.reshape(shape)
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ValueError(f"{what} has shape {tuple(value.shape)}, need {tuple(shape)}")
    return value


def subset_value(value, rows: np.ndarray | None, cols: np.ndarray | None):
    """Subset a lazy or in-memory matrix by positions (``None`` = all)."""
    if isinstance(value, LazyMatrix):
        return value._subset(rows, cols)
    out = value
    if rows is not None:
        out = out[rows]
    if cols is not None:
        out = out[:, cols]
    if out is value and hasattr(out, "copy"):
        out = out.copy()
    return out


class BackedLayers(MutableMapping):
    """Layers of an :class:`~anndataoom.AnnDataOOM`: name → matrix.

    Values are :class:`BackedArray` (never materialised: ``layers["counts"]
    = adata.X`` records a reference to the lazy matrix, which is immutable,
    so later changes of ``X`` do not affect the layer) or in-memory arrays of
    the parent's shape.
    """

    def __init__(self, parent=None, data: Mapping | None = None):
        self._parent = None if parent is None else weakref.ref(parent)
        self._data: dict[str, object] = {}
        if data is not None:
            for k, v in dict(data).items():
                self[k] = v

    @property
    def parent(self):
        """The object these layers belong to (as anndata's aligned mappings; None if gone)."""
        return self._parent() if self._parent is not None else None

    def _shape(self) -> tuple[int, int] | None:
        p = self._parent() if self._parent is not None else None
        return None if p is None else tuple(p.shape)

    def __getitem__(self, key: str):
        try:
            value = self._data[key]
        except KeyError:
            raise KeyError(f"no layer {key!r}; layers are {list(self._data)}") from None
        if isinstance(value, LazyMatrix):
            guard_scanpy(f"reading adata.layers[{key!r}]")
        return for_anndata_merge(value, f"layers[{key!r}]")

    def __setitem__(self, key: str, value) -> None:
        if not isinstance(key, str):
            raise TypeError(f"layer names must be str, got {type(key).__name__}")
        self._data[key] = as_matrix_value(value, self._shape(), f"layers[{key!r}]")

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key) -> bool:
        return key in self._data

    def copy(self) -> dict:
        """Return a plain dict of the layers (lazy values are shared, in-memory copied)."""
        return {k: (v if isinstance(v, LazyMatrix) else v.copy()) for k, v in self._data.items()}

    def _subset(self, rows, cols) -> dict:
        return {k: subset_value(v, rows, cols) for k, v in self._data.items()}

    def __repr__(self) -> str:
        kinds = [f"{k} ({'lazy' if isinstance(v, LazyMatrix) else 'in memory'})"
                 for k, v in self._data.items()]
        return f"BackedLayers with keys: {', '.join(kinds)}"
