"""Open an ``.h5ad`` file or a ``.zarr`` store as an :class:`~anndataoom.AnnDataOOM`.

X, layers and raw/X stay lazy (read by the Rust core); everything else is
loaded with anndata's element readers through h5py or zarr-python.
"""

from __future__ import annotations

import os
import warnings

import h5py
import pandas as pd
from anndata.io import read_elem

from anndataoom import _oom
from anndataoom._core._anndataoom import AnnDataOOM
from anndataoom._core._backed_array import BackedArray
from anndataoom.io._h5plugins import with_filter_plugins

__all__ = ["read", "read_h5ad", "read_zarr"]

_ELEMS = ("obsm", "varm", "obsp", "varp")
#: Prefixes of the remote Zarr stores read through object storage / HTTP.
_URL_SCHEMES = ("s3://", "http://", "https://")


def open_ro(path: str) -> h5py.File:
    """Open ``path`` read-only with h5py, without HDF5 file locking.

    If this process already has the file open through h5py with locking (the
    user's ``h5py.File``, anndata's ``backed="r"``), HDF5 refuses different
    flags: then it is opened as that handle was.
    """
    try:
        return h5py.File(path, "r", locking=False)
    except TypeError:  # pragma: no cover - very old h5py
        return h5py.File(path, "r")
    except OSError as e:
        if "locking flag values don't match" not in str(e):
            raise
        return h5py.File(path, "r")


def _corrupt(path: str, key: str, e: Exception) -> Exception:
    """Build a typed error for a failure while reading element ``key`` of ``path``.

    h5py reports damaged metadata as OSError, KeyError or RuntimeError: those
    become :class:`AnnDataReadError` (an OSError); anything else (anndata
    refusing an encoding, ...) becomes :class:`AnnDataFormatError`.
    """
    msg = f"cannot read element '{key}' of '{path}' (corrupt or not AnnData?): {e}"
    if isinstance(e, (OSError, KeyError, RuntimeError)):
        return _oom.AnnDataReadError(msg)
    return _oom.AnnDataFormatError(msg)


def _read_elem(f, path: str, key: str, default=None):
    try:
        if key not in f:
            return default
        return read_elem(f[key])
    except Exception as e:
        raise _corrupt(path, key, e) from e


def _read_group(f, path: str, key: str):
    return _read_elem(f, path, key, {})


def _is_url(path) -> bool:
    return isinstance(path, str) and path.startswith(_URL_SCHEMES)


def _storage_options(url: str) -> dict:
    """Return the fsspec options for ``url``, from the AWS variables the Rust reader uses."""
    if not url.startswith("s3://"):
        return {}
    opts: dict = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        opts["endpoint_url"] = endpoint
    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        opts["anon"] = True
    return opts


def _open_zarr(path: str):
    import zarr

    kw = {}
    if _is_url(path):
        kw["storage_options"] = _storage_options(path)
    try:
        return zarr.open_group(path, mode="r", **kw)
    except ImportError as e:
        raise ImportError(f"reading '{path}' needs fsspec's remote file systems: "
                          f"pip install 'anndataoom[remote]' ({e})") from e
    except Exception as e:
        raise _corrupt(path, "/", e) from e


def _legacy_obs_var(path: str):
    """obs/var/uns/obsm/varm of a pre-0.7 file, via anndata's own reader."""
    import anndata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old = anndata.read_h5ad(path, backed="r")
    try:
        return {
            "obs": old.obs.copy(),
            "var": old.var.copy(),
            "uns": dict(old.uns),
            "obsm": {k: v for k, v in old.obsm.items()},
            "varm": {k: v for k, v in old.varm.items()},
            "obsp": {k: v for k, v in old.obsp.items()},
            "varp": {k: v for k, v in old.varp.items()},
            "raw_var": None if old.raw is None else old.raw.var.copy(),
        }
    finally:
        old.file.close()


def _fspath(path) -> str:
    path = os.fspath(path)
    return os.fsdecode(path) if isinstance(path, bytes) else path


def _store_path(store) -> str:
    """Return the directory of a Zarr store given as a path or an open local ``zarr.Group``."""
    import zarr

    if isinstance(store, zarr.Group):
        root = getattr(store.store, "root", None)
        if root is None:
            raise TypeError("only stores on the local file system can be read lazily, "
                            f"got {type(store.store).__name__}")
        return os.path.join(os.fspath(root), store.path)
    return _fspath(store)


def _check_backed(backed) -> None:
    if backed not in ("r", True, None):
        raise ValueError(
            f"backed={backed!r} is not supported; anndataoom opens files read-only ('r')"
        )


def _var_index_only(f, path: str, key: str, seen: dict | None = None):
    """Read the dataframe at ``key`` with its index and no columns (anndata 0.2.0 layout).

    Other layouts are read whole.  ``seen`` (HDF5 files) maps the stored
    bytes of indices read before to their index: an input whose index holds
    the same strings (the usual atlas: one gene list) reuses it instead of
    building tens of thousands of strings again.
    """
    try:
        g = f[key]
        attrs = g.attrs
        if attrs.get("encoding-type") != "dataframe" or attrs.get("encoding-version") != "0.2.0":
            return _read_elem(f, path, key)
        idx_key = attrs["_index"]
        stored = None
        if seen is not None and isinstance(f, h5py.Group):
            stored = _oom.string_bytes(path, f"{key}/{idx_key}")
        index = seen.get(stored) if stored is not None else None
        if index is None:
            index = pd.Index(read_elem(g[idx_key]))
            if stored is not None:
                seen[stored] = index
        # a copy: the name set below must not reach the other users of a reused index
        df = pd.DataFrame(index=index.copy())
    except Exception as e:
        raise _corrupt(path, key, e) from e
    if idx_key != "_index":
        df.index.name = idx_key
    return df


#: What :func:`_elements` may leave out (``concat_on_disk`` reads only what its merge needs):
#: ``"var"`` keeps var's index only, the others are left empty.
LEANABLE = frozenset({"var", "uns", "varm", "varp", "obsp", "raw/var", "raw/varm"})


def _elements(f, path: str, lean: frozenset = frozenset(), seen: dict | None = None) -> dict:
    """obs, var, uns, obsm, varm, obsp, varp and raw's var/varm of an open store.

    ``lean`` names elements the caller does not need (:data:`LEANABLE`):
    those are not read (var and raw/var: their index only, reused from
    ``seen`` when the same strings were read before, see :func:`_var_index_only`).
    """
    def frame(key):
        if key in lean and key in f:
            return _var_index_only(f, path, key, seen)
        return _read_elem(f, path, key)

    def group(key):
        return {} if key in lean else _read_group(f, path, key)

    parts = {
        "obs": _read_elem(f, path, "obs"),
        "var": frame("var"),
        "uns": group("uns"),
        **{k: group(k) for k in _ELEMS},
    }
    raw = "raw/X" in f
    parts["raw_var"] = frame("raw/var") if raw else None
    parts["raw_varm"] = group("raw/varm") if raw else {}
    return parts


def _assemble(path: str, parts: dict, has_x: bool, layer_keys: list, raw_x) -> AnnDataOOM:
    raw_var, raw_varm = parts.pop("raw_var"), parts.pop("raw_varm")
    X = BackedArray(_oom.open(path, "X")) if has_x else None
    shape = None
    if X is None:
        shape = (len(parts["obs"]) if parts["obs"] is not None else 0,
                 len(parts["var"]) if parts["var"] is not None else 0)
    layers = {k: BackedArray(_oom.open(path, f"layers/{k}")) for k in layer_keys}
    adata = AnnDataOOM(X=X, layers=layers, shape=shape, **parts)
    if raw_x is not None:
        rX = BackedArray(_oom.open(path, raw_x))
        if raw_var is None:
            raw_var = pd.DataFrame(index=pd.RangeIndex(rX.shape[1]).astype(str))
        adata.raw = {"X": rX, "var": raw_var, "varm": raw_varm}
    return adata


def _refuse_as_sparse(as_sparse) -> None:
    if as_sparse:
        raise NotImplementedError(
            "anndataoom does not convert dense elements to sparse while reading (as_sparse); "
            "read the file, then write it with the matrices you want")


def read_h5ad(path: str | os.PathLike, backed: str | bool | None = "r", *, as_sparse=(),
              as_sparse_fmt=None, chunk_size: int | None = None) -> AnnDataOOM:
    """Open an ``.h5ad`` file as a lazy :class:`~anndataoom.AnnDataOOM`.

    obs, var, obsm, varm, obsp, varp and uns are loaded into memory with
    anndata's readers; X, ``layers/*`` and ``raw/X`` stay on disk.  The file
    is opened read-only and never modified; no file is created next to it.

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    backed
        Accepted for compatibility: ``"r"`` (default), ``True`` or ``None``.
        ``"r+"`` is refused (the object never writes to its source).
    as_sparse, as_sparse_fmt, chunk_size
        :func:`anndata.read_h5ad`'s: ``chunk_size`` is accepted and unused
        (nothing is read up front); a non-empty ``as_sparse`` raises
        ``NotImplementedError``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    anndataoom.exceptions.AnnDataReadError
        (an ``OSError``) a directory, an empty, truncated or non-HDF5 file.
    anndataoom.exceptions.AnnDataFormatError
        (a ``ValueError``) an HDF5 file that is not AnnData.
    """
    _check_backed(backed)
    _refuse_as_sparse(as_sparse)
    return _read_h5ad(_fspath(path))


#: How often an open is retried when the file is replaced while it is being opened.
_REPLACED_RETRIES = 5


def _read_h5ad(path: str, lean: frozenset = frozenset(), seen: dict | None = None) -> AnnDataOOM:
    """:func:`read_h5ad` leaving out the elements in ``lean`` (see :func:`_elements`)."""
    if os.path.isdir(path):
        raise _oom.AnnDataReadError(f"'{path}' is a directory, not an .h5ad file (use read_zarr)")
    for _ in range(_REPLACED_RETRIES):
        adata = with_filter_plugins(lambda: _read_h5ad_once(path, lean, seen))
        if adata is not None:
            return adata
    raise _oom.AnnDataReadError(
        f"'{path}' was replaced {_REPLACED_RETRIES} times while being opened; "
        "open it once its writer has finished")


def _read_h5ad_once(path: str, lean: frozenset, seen: dict | None) -> AnnDataOOM | None:
    """One open; ``None`` when the file at ``path`` was replaced meanwhile.

    obs/var come through h5py and the matrices through separate opens in the
    core, so a writer renaming a new file onto ``path`` in between would pair
    the old obs with the new X. A descriptor held from the start keeps the
    first file (and its inode number) alive, so ``path`` still naming that
    inode once every open is done proves that they all saw one file.
    """
    _oom.check_file(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        opened = _identity(os.fstat(fd))
        with open_ro(path) as f:
            try:
                legacy = "obs" in f and isinstance(f["obs"], h5py.Dataset)
                has_x = "X" in f
                layer_keys = list(f["layers"].keys()) if "layers" in f else []
                raw_x = next((k for k in ("raw/X", "raw.X") if k in f), None)
            except Exception as e:
                raise _corrupt(path, "/", e) from e
            if not legacy:
                parts = _elements(f, path, lean, seen)
        if legacy:  # anndata opens it with other locking flags than ours: after closing
            try:
                parts = _legacy_obs_var(path)
            except Exception as e:
                raise _corrupt(path, "obs", e) from e
            parts["raw_varm"] = {}
        adata = _assemble(path, parts, has_x, layer_keys, raw_x)
        try:
            same = _identity(os.stat(path)) == opened
        except FileNotFoundError:
            same = False
    finally:
        os.close(fd)
    if not same:
        adata.close()
        return None
    return adata


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def read_zarr(store: str | os.PathLike, backed: str | bool | None = "r") -> AnnDataOOM:
    """Open a ``.zarr`` store (Zarr v2 or v3) as a lazy :class:`~anndataoom.AnnDataOOM`.

    The same object and API as :func:`read_h5ad`: X, ``layers/*`` and
    ``raw/X`` stay on disk and are decoded by the Rust core (blosc, zstd,
    gzip, sharded arrays; chunks decoded on all cores); the other elements
    are loaded with anndata's readers. The store is never modified.

    Parameters
    ----------
    store
        Path of the store directory (as written by ``anndata.AnnData.write_zarr``
        or :func:`anndataoom.io.write_zarr`), a ``zarr.Group`` open on
        such a directory, or the URL of a remote store: ``s3://bucket/key.zarr``
        (credentials, region and endpoint from the standard ``AWS_*``
        environment variables; anonymous without ``AWS_ACCESS_KEY_ID``) or
        ``http(s)://host/path.zarr``.  Remote chunks are fetched by byte
        ranges, concurrently, with timeouts (``ANNDATAOOM_REMOTE_TIMEOUT``
        seconds, default 60) and retries.
    backed
        As in :func:`read_h5ad`.

    Raises
    ------
    FileNotFoundError
        ``store`` does not exist.
    anndataoom.exceptions.AnnDataReadError
        (an ``OSError``) not a directory holding a Zarr group, unreadable
        metadata, or a remote store that cannot be reached (names the URL).
    anndataoom.exceptions.AnnDataFormatError
        (a ``ValueError``) a Zarr store that is not AnnData.
    """
    _check_backed(backed)
    return _read_zarr(_store_path(store))


def _read_zarr(path: str, lean: frozenset = frozenset()) -> AnnDataOOM:
    """:func:`read_zarr` of a store path leaving out the elements in ``lean``."""
    if not _is_url(path) and os.path.isfile(path):
        raise _oom.AnnDataReadError(
            f"'{path}' is a file, not a Zarr store directory (use read_h5ad)"
        )
    _oom.check_file(path)
    f = _open_zarr(path)
    try:
        has_x = "X" in f
        layer_keys = list(f["layers"].keys()) if "layers" in f else []
        raw_x = "raw/X" if "raw/X" in f else None
    except Exception as e:
        raise _corrupt(path, "/", e) from e
    return _assemble(path, _elements(f, path, lean), has_x, layer_keys, raw_x)


def read(path: str | os.PathLike, backed: str | bool | None = "r", *, as_sparse=(),
         as_sparse_fmt=None, chunk_size: int | None = None) -> AnnDataOOM:
    """Open an ``.h5ad`` file or a ``.zarr`` store lazily.

    A directory or an ``s3://`` / ``http(s)://`` URL is read as a Zarr store
    (:func:`read_zarr`), anything else as ``.h5ad`` (:func:`read_h5ad`).
    The keyword arguments are :func:`anndata.read_h5ad`'s: ``chunk_size``
    (anndata's block size for ``as_sparse``) is accepted and unused, since
    nothing is read up front; ``as_sparse`` (converting dense elements to
    sparse while reading) is not supported.  Unknown keywords raise
    ``TypeError``, as anndata does.
    """
    _refuse_as_sparse(as_sparse)
    if _is_url(path) or os.path.isdir(_fspath(path)):
        return read_zarr(path, backed=backed)
    return read_h5ad(path, backed=backed)
