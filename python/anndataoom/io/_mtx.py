"""MatrixMarket files and Cell Ranger's mtx folders (:func:`read_mtx`, :func:`read_10x_mtx`).

The text is parsed in Rust, in parallel and in bounded memory, into a CSR
held in unnamed temp files; it is then streamed once into a store: the
``out=`` file the caller keeps, or an ``.h5ad`` in a temp directory owned by
the returned object (removed when the last lazy matrix reading it is gone:
``close()``, garbage collection or interpreter exit).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from types import EllipsisType
from typing import Literal

import anndata
import numpy as np
import pandas as pd

from anndataoom import _oom
from anndataoom._core._anndataoom import AnnDataOOM
from anndataoom._core._backed_array import BackedArray
from anndataoom.io._read import _fspath, read_h5ad, read_zarr

__all__ = ["read_10x_mtx", "read_mtx"]


class TempStore:
    """A temp directory removed when this object is garbage collected (or at exit).

    Lazy matrices reading from it keep a reference (``BackedArray._temp_store``),
    carried over to every subset or transform derived from them.
    """

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="anndataoom-", dir=os.environ.get("OOM_TMPDIR"))
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)

    def remove(self) -> None:
        """Remove the directory now."""
        self._finalizer()


def _keep(adata: AnnDataOOM, out: str | os.PathLike | None,
          compression: str | None = None) -> AnnDataOOM:
    """Stream ``adata`` into ``out`` (or a temp store owned by the result) and open it."""
    if out is not None:
        out = _fspath(out)
        zarr = out.endswith(".zarr")
        if zarr:
            adata.write_zarr(out, convert_strings_to_categoricals=False)
        else:
            adata.write_h5ad(out, compression=compression,
                             convert_strings_to_categoricals=False)
        return read_zarr(out) if zarr else read_h5ad(out)
    store = TempStore()
    try:
        target = os.path.join(store.path, "matrix.h5ad")
        adata.write_h5ad(target, convert_strings_to_categoricals=False)
        result = read_h5ad(target)
    except BaseException:
        store.remove()
        raise
    result.X._temp_store = store
    return result


def _parse(path: Path, transpose: bool) -> BackedArray:
    return BackedArray(_oom.read_mtx(path, transpose))


def read_mtx(filename: str | os.PathLike, dtype: str | np.dtype = "float32", *,
             out: str | os.PathLike | None = None) -> AnnDataOOM:
    """Read a MatrixMarket file (``.mtx`` or ``.mtx.gz``) as :func:`scanpy.read_mtx` does.

    Rows of the file are observations; values are ``dtype``; duplicate
    entries are summed (as scipy).  Coordinate format, ``integer``, ``real``
    or ``pattern`` field, ``general`` symmetry.

    Parameters
    ----------
    filename
        The file; gzip is recognised by its content.
    dtype
        Type of the values, as anndata's ``read_mtx`` (a lazy cast from float32).
    out
        Keep the result in this ``.h5ad`` file or ``.zarr`` store.  Default:
        a temp store removed with the returned object.

    Returns
    -------
    A lazy :class:`~anndataoom.AnnDataOOM` with obs/var names ``"0"``, ``"1"``, ...

    Raises
    ------
    FileNotFoundError
        ``filename`` does not exist.
    anndataoom.exceptions.AnnDataFormatError
        (a ``ValueError``) a malformed header or line, a coordinate outside
        the header's shape, or fewer/more entries than announced; the
        message names the line.
    anndataoom.exceptions.AnnDataReadError
        (an ``OSError``) a truncated or corrupt gzip stream.
    """
    X = _parse(Path(_fspath(filename)), transpose=False)
    if np.dtype(dtype) != X.dtype:
        X = X.astype(dtype)
    adata = anndata.AnnData(shape=X.shape)
    return _keep(AnnDataOOM(X=X, obs=adata.obs, var=adata.var), out)


def _cache_file(matrix: Path, options: tuple) -> Path:
    """Where ``cache=True`` keeps the folder read with ``options`` (in scanpy's cache dir)."""
    import scanpy as sc

    tag = hashlib.sha1(repr(options).encode()).hexdigest()[:12]
    name = str(matrix.resolve().parent).strip(os.sep).replace(os.sep, "-")
    return Path(sc.settings.cachedir) / f"{name}-{tag}.h5ad"


def _fresh(cached: Path, sources: list[Path]) -> bool:
    """Whether ``cached`` exists and is newer than every file it was made from (ties: stale)."""
    if not cached.is_file():
        return False
    made = cached.stat().st_mtime
    return all(p.stat().st_mtime < made for p in sources)


def _need(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: '{path}'")
    return path


def read_10x_mtx(
    path: str | os.PathLike,
    *,
    var_names: Literal["gene_symbols", "gene_ids"] = "gene_symbols",
    make_unique: bool = True,
    gex_only: bool = True,
    prefix: str | None = None,
    compressed: bool = True,
    out: str | os.PathLike | None = None,
    cache: bool = False,
    cache_compression: Literal["gzip", "lzf"] | None | EllipsisType = ...,
) -> AnnDataOOM:
    """Read a Cell Ranger mtx folder as :func:`scanpy.read_10x_mtx` does, in bounded memory.

    Cell Ranger v2 (``matrix.mtx``, ``genes.tsv``, ``barcodes.tsv``) and
    v3+ (the same gzipped, with ``features.tsv.gz``) folders.  The genes ×
    cells matrix is parsed in parallel into a cells × genes float32 CSR on
    disk (never the whole matrix in memory), then streamed into ``out`` or
    a temp store removed with the returned object.

    Parameters
    ----------
    path
        The folder, e.g. ``filtered_feature_bc_matrix/``.
    var_names
        ``"gene_symbols"`` (var_names; ``var['gene_ids']``) or ``"gene_ids"``
        (var_names; ``var['gene_symbols']``).
    make_unique
        Make gene symbols unique by appending ``-1``, ``-2``, ... (as scanpy).
    gex_only
        Keep only ``'Gene Expression'`` features (v3+).
    prefix
        A prefix of the file names (``patientA_matrix.mtx``, ...).
    compressed
        Whether v3+ files end in ``.gz`` (``False`` for STARsolo output).
    out
        Keep the result in this ``.h5ad`` file or ``.zarr`` store.
    cache
        Keep the result in scanpy's cache directory (``scanpy.settings.cachedir``)
        and read it from there next time, as scanpy does; the folder is parsed
        again when one of its files is newer than the cached ``.h5ad``.
    cache_compression
        h5py compression of the cached file (default:
        ``scanpy.settings.cache_compression``).

    Returns
    -------
    A lazy :class:`~anndataoom.AnnDataOOM`.

    Raises
    ------
    FileNotFoundError
        The folder lacks the matrix, features/genes or barcodes file.
    anndataoom.exceptions.AnnDataFormatError
        A malformed matrix file (see :func:`read_mtx`), or a matrix whose
        shape disagrees with the number of barcodes or features.
    ValueError
        ``var_names`` is neither ``"gene_symbols"`` nor ``"gene_ids"``, or
        both ``out`` and ``cache=True`` are given.
    """
    if var_names not in ("gene_symbols", "gene_ids"):
        raise ValueError("`var_names` needs to be 'gene_symbols' or 'gene_ids'")
    if cache and out is not None:
        raise ValueError("give either `out` or `cache=True`, not both")
    path = Path(_fspath(path))
    prefix = prefix or ""
    legacy = (path / f"{prefix}genes.tsv").is_file()
    suffix = "" if legacy else (".gz" if compressed else "")
    matrix = _need(path / f"{prefix}matrix.mtx{suffix}")
    features = _need(path / f"{prefix}{'genes' if legacy else 'features'}.tsv{suffix}")
    barcode_file = _need(path / f"{prefix}barcodes.tsv{suffix}")
    compression = None
    if cache:
        out = _cache_file(matrix, (prefix, suffix, var_names, make_unique, gex_only))
        if _fresh(out, [matrix, features, barcode_file]):
            return read_h5ad(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if cache_compression is ...:
            import scanpy as sc

            cache_compression = sc.settings.cache_compression
        compression = cache_compression
    genes = pd.read_csv(features, header=None, sep="\t")
    barcodes = pd.read_csv(barcode_file, header=None)
    X = _parse(matrix, transpose=True)
    if X.shape != (len(barcodes), len(genes)):
        raise _oom.AnnDataFormatError(
            f"'{matrix}' holds a {X.shape[1]} × {X.shape[0]} (features × barcodes) matrix but "
            f"the folder lists {len(genes)} features and {len(barcodes)} barcodes"
        )
    # obs/var set exactly as scanpy sets them on its in-memory object
    shell = anndata.AnnData(shape=X.shape)
    if var_names == "gene_symbols":
        names = pd.Index(genes[1].array)
        if make_unique:
            names = anndata.utils.make_index_unique(names)
        shell.var_names = names.astype("str")
        shell.var["gene_ids"] = genes[0].array
    else:
        shell.var_names = genes[0].array.astype("str")
        shell.var["gene_symbols"] = genes[1].array
    if not legacy:
        shell.var["feature_types"] = genes[2].array
    shell.obs_names = barcodes[0].array.astype("str")
    adata = AnnDataOOM(X=X, obs=shell.obs, var=shell.var)
    if not legacy and gex_only:
        adata = adata[:, (adata.var["feature_types"] == "Gene Expression").to_numpy()]
    return _keep(adata, out, compression)
