"""One entry point for every input we read: :func:`open_any` decides by name and content."""

from __future__ import annotations

import os

import h5py

from anndataoom._core._anndataoom import AnnDataOOM
from anndataoom.io._10x import read_10x_h5
from anndataoom.io._loom import read_loom
from anndataoom.io._mtx import read_10x_mtx, read_mtx
from anndataoom.io._read import (
    _fspath,
    _is_url,
    _read_h5ad,
    _read_zarr,
    _store_path,
    open_ro,
    read_h5ad,
    read_zarr,
)

__all__ = ["input_kind", "open_any"]


def _mtx_folder(path: str) -> bool:
    return any(n.endswith(("matrix.mtx", "matrix.mtx.gz")) for n in os.listdir(path))


def _hdf5_kind(path: str) -> str:
    """``"10x"``, ``"loom"`` or ``"h5ad"`` from the file's top-level names."""
    try:
        with open_ro(path) as f:
            keys = set(f.keys())
            if "X" in keys or "obs" in keys:
                return "h5ad"
            if "matrix" in keys and "row_attrs" in keys:
                return "loom"
            if "matrix" in keys or (keys and all(isinstance(f[k], h5py.Group) and "barcodes" in f[k]
                                                 for k in keys)):
                return "10x"
    except OSError:
        pass  # not HDF5: read_h5ad gives the typed error
    return "h5ad"


def input_kind(path: str | os.PathLike, prefix: str | None = None) -> str:
    """Tell what ``path`` holds.

    A file-name ``prefix`` (Cell Ranger's ``prefix=``) makes ``path`` an mtx folder.

    Returns
    -------
    ``"zarr"``, ``"mtx-folder"``, ``"mtx"``, ``"10x"``, ``"loom"`` or ``"h5ad"``.
    """
    if prefix is not None:
        return "mtx-folder"
    if _is_url(path):
        return "zarr"
    p = _fspath(path)
    if os.path.isdir(p):
        return "mtx-folder" if _mtx_folder(p) else "zarr"
    if p.endswith((".mtx", ".mtx.gz")):
        return "mtx"
    if p.endswith(".loom"):
        return "loom"
    if os.path.isfile(p) and not p.endswith(".h5ad"):
        return _hdf5_kind(p)
    return "h5ad"


_READERS = {"zarr": read_zarr, "mtx-folder": read_10x_mtx, "mtx": read_mtx,
            "10x": read_10x_h5, "loom": read_loom, "h5ad": read_h5ad}


def open_any(path: str | os.PathLike, lean: frozenset = frozenset(),
             seen: dict | None = None, *, genome: str | None = None, gex_only: bool = True,
             prefix: str | None = None) -> AnnDataOOM:
    """Open an ``.h5ad``, a Zarr store, a Cell Ranger ``.h5``/mtx folder, ``.mtx`` or ``.loom``.

    Each is read lazily with its reader's defaults (:func:`~anndataoom.read_h5ad`,
    :func:`~anndataoom.read_zarr`, :func:`~anndataoom.read_10x_h5`,
    :func:`~anndataoom.read_10x_mtx`, :func:`~anndataoom.read_mtx`,
    :func:`~anndataoom.read_loom`); see :func:`input_kind` for how the kind is chosen.
    ``lean`` names elements of an ``.h5ad``/Zarr input the caller will not use
    (:data:`anndataoom.io._read.LEANABLE`), which are then not read; ``seen``
    is shared by the calls for several ``.h5ad`` inputs, which then read one
    var index once (see :func:`anndataoom.io._read._var_index_only`).
    ``genome``, ``gex_only`` and ``prefix`` go to the Cell Ranger readers that
    take them.
    """
    kind = input_kind(path, prefix)
    if kind == "10x":
        return read_10x_h5(path, genome=genome, gex_only=gex_only)
    if kind == "mtx-folder":
        return read_10x_mtx(path, gex_only=gex_only, prefix=prefix)
    if lean and kind == "h5ad":
        return _read_h5ad(_fspath(path), lean, seen)
    if lean and kind == "zarr":
        return _read_zarr(_store_path(path), lean)
    return _READERS[kind](path)
