"""anndata's own writers on an AnnDataOOM: lazy matrices streamed into the open group.

``anndata.io.write_h5ad(path, a)``, ``anndata.io.write_zarr(path, a)`` and
``write_elem(group, key, a.X)`` dispatch on the element's exact type. anndata
opens (and truncates) the target before it reaches X, so without writers for
our types it would fail there and leave a broken file behind. Registered
here: the lazy matrix goes into the group block by block through anndata's
own encoders (a first empty block, then ``sparse_dataset(...).append`` for
sparse, row slices for dense), and an AnnDataOOM or its raw is written as
anndata writes AnnData/Raw. Such writes are not atomic, as anndata's are not;
``a.write_h5ad`` / :func:`anndataoom.io.write_zarr` remain the fast, atomic way.

anndata's file writers (``write_h5ad``, ``write_zarr``) are also wrapped: they
truncate the target before reading X, so writing an AnnDataOOM onto a file it
reads from would destroy its own source. That raises ``ValueError`` before
anything is touched.
"""

from __future__ import annotations

import functools
import os
from types import MappingProxyType

import h5py
import numpy as np
import scipy.sparse as sp

from anndataoom._core._anndataoom import AnnDataOOM
from anndataoom._core._backed_array import BackedArray, ScaledBackedArray, TransformedBackedArray
from anndataoom._core._raw import BackedRaw
from anndataoom._core._transpose import TransposedArray, write_refused

__all__ = ["install_writers"]

#: Values per dense block written (64 MB of float32).
DENSE_BLOCK_VALUES = 1 << 24
#: Values per chunk of a dense array written (whole rows).
CHUNK_VALUES = 1 << 20


def _write_lazy(f, k: str, elem, *, _writer, dataset_kwargs=MappingProxyType({})):
    n, m = elem.shape
    if elem.is_sparse:
        from anndata.io import sparse_dataset

        nnz = elem._known_nnz()
        kw = dict(dataset_kwargs)
        # created empty, the arrays would get chunks sized for 0 values: Zarr's are of
        # one value (a file each), h5py's of 1024
        kw.setdefault("chunks", (CHUNK_VALUES,))
        if nnz is None or nnz > np.iinfo(np.int32).max:
            # appends to a 32-bit indptr stop with OverflowError past 2^31 entries
            kw.setdefault("indptr_dtype", np.int64)
        _writer.write_elem(f, k, sp.csr_matrix((0, m), dtype=elem.dtype), dataset_kwargs=kw)
        out = sparse_dataset(f[k])
        for _, _, block in elem._iter_ranges(elem.blocks(), True):
            out.append(block)
        return
    if n == 0 or m == 0:
        _writer.write_elem(f, k, np.zeros((n, m), dtype=elem.dtype),
                           dataset_kwargs=dataset_kwargs)
        return
    # Created empty with room to grow (anndata's encoder takes the shape and
    # dtype from the array it is given), then filled row slice by row slice.
    kw = dict(dataset_kwargs)
    kw.setdefault("chunks", (max(1, min(n, CHUNK_VALUES // m)), m))
    if isinstance(f, h5py.Group):
        kw["maxshape"] = (None, m)
    _writer.write_elem(f, k, np.zeros((0, m), dtype=elem.dtype), dataset_kwargs=kw)
    arr = f[k]
    arr.resize((n, m))
    for start, end, block in elem.chunked(max(1, DENSE_BLOCK_VALUES // m)):
        arr[start:end] = block


def _refuse_transposed(f, k: str, elem, *, _writer, dataset_kwargs=MappingProxyType({})):
    raise write_refused()


def _guard_sources(original):
    """Wrap anndata's ``write_h5ad``/``write_zarr``: refuse a target an AnnDataOOM reads from.

    anndata truncates the target before it reads X, which would destroy the
    data being written (``oom.read(p)`` then ``anndata.io.write_h5ad(p, a)``).
    """

    @functools.wraps(original)
    def write(store, adata, *args, **kwargs):
        if isinstance(adata, AnnDataOOM) and isinstance(store, (str, os.PathLike)):
            from anndataoom.io._write import refuse_overwriting_sources

            refuse_overwriting_sources(adata, os.path.realpath(os.fspath(store)))
        return original(store, adata, *args, **kwargs)

    write._anndataoom_original = original
    return write


def _install_source_guards() -> None:
    import anndata.io
    from anndata._io import h5ad, zarr

    for mod, name in ((anndata.io, "write_h5ad"), (h5ad, "write_h5ad"),
                      (anndata.io, "write_zarr"), (zarr, "write_zarr")):
        fn = getattr(mod, name)
        if getattr(fn, "_anndataoom_original", None) is None:
            setattr(mod, name, _guard_sources(fn))


def install_writers() -> None:
    """Register the writers with anndata's IO registry and guard its file writers (idempotent)."""
    from anndata._io.specs.methods import write_anndata, write_raw
    from anndata._io.specs.registry import _REGISTRY, IOSpec
    from zarr import Group as ZarrGroup

    for group in (h5py.Group, ZarrGroup):
        for cls, spec, func in (
            (BackedArray, IOSpec("", ""), _write_lazy),
            (TransformedBackedArray, IOSpec("", ""), _write_lazy),
            (ScaledBackedArray, IOSpec("", ""), _write_lazy),
            (TransposedArray, IOSpec("", ""), _refuse_transposed),
            (AnnDataOOM, IOSpec("anndata", "0.1.0"), write_anndata),
            (BackedRaw, IOSpec("raw", "0.1.0"), write_raw),
        ):
            if (group, cls, frozenset()) not in _REGISTRY.write:
                _REGISTRY.register_write(group, cls, spec)(func)
    _install_source_guards()
