"""Atomic, streamed writing of an :class:`~anndataoom.AnnDataOOM` to ``.h5ad`` or ``.zarr``.

X, layers and raw/X are written block by block by the Rust core (sparse
stays CSR; lazy transforms are applied by reading the view; chunks are
compressed on all cores).  Everything else goes through anndata's own
element encoders; for ``.h5ad`` that happens after the Rust sink closed the
file, as the two HDF5 libraries (ours, h5py's) lock files separately.
The output is written to ``.anndataoom-tmp-<pid>-<random>.<ext>`` in the
target directory, fsynced and renamed into place, so a crash never leaves
a partial file at the target.
"""

from __future__ import annotations

import contextlib
import errno
import operator
import os
import shutil
import signal
import stat
import threading
import time
import uuid
import warnings
from collections.abc import Callable

import h5py
from anndata.io import write_elem

from anndataoom import _oom
from anndataoom._core._backed_array import BackedArray
from anndataoom._core._guard import max_dense_bytes
from anndataoom._progress import pass_bars

__all__ = ["write_h5ad", "write_zarr", "start_write_h5ad", "PendingWrite", "TMP_PREFIX"]

TMP_PREFIX = ".anndataoom-tmp-"
_RUN_START = time.time()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_tmp(directory: str) -> list[str]:
    """Remove our temp files in ``directory`` left by runs that died.

    A file counts as stale when its name starts with :data:`TMP_PREFIX`, it
    was last modified before this interpreter started and the process id in
    its name is not running.
    """
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(TMP_PREFIX):
            continue
        p = os.path.join(directory, name)
        try:
            pid = int(name[len(TMP_PREFIX):].split("-", 1)[0])
        except ValueError:
            pid = None
        try:
            st = os.stat(p)
        except OSError:
            continue
        if st.st_mtime >= _RUN_START:
            continue
        if pid is not None and pid != os.getpid() and _pid_alive(pid):
            continue
        with contextlib.suppress(OSError):
            _remove(p)
            removed.append(p)
    return removed


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _source_paths(adata) -> set[str]:
    vals = [adata._X, *adata.layers.values()]
    if adata.raw is not None:
        vals.append(adata.raw.X)
    return {p for v in vals if isinstance(v, BackedArray) for p in v.matrix.source_paths}


def refuse_overwriting_sources(adata, target: str) -> None:
    """Raise ``ValueError`` if ``target`` is the same file or store as one ``adata`` reads."""
    if not os.path.exists(target):
        return
    for src in _source_paths(adata):
        with contextlib.suppress(OSError):
            if os.path.samefile(src, target):
                raise ValueError(
                    f"refusing to overwrite '{target}': this AnnDataOOM reads its data "
                    "from it; write to another path"
                )


def _set_enc(obj, kind: str, version: str) -> None:
    obj.attrs["encoding-type"] = kind
    obj.attrs["encoding-version"] = version


WriteMatrix = Callable[[object, str, object, dict], None]


def _matrices(adata) -> dict[str, object]:
    """Every matrix of ``adata`` by its path in the file (X, raw/X, layers/*)."""
    out = {} if adata._X is None else {"X": adata._X}
    if adata.raw is not None:
        out["raw/X"] = adata.raw.X
    out.update((f"layers/{k}", v) for k, v in adata.layers.items())
    return out


def _write_matrices(f, adata, dkw: dict, write_matrix: WriteMatrix,
                    setup=contextlib.nullcontext) -> None:
    """Write every matrix with ``write_matrix``; their groups are made inside ``setup()``."""
    with setup():
        _set_enc(f, "anndata", "0.1.0")
        if adata.raw is not None:
            _set_enc(f.require_group("raw"), "raw", "0.1.0")
        _set_enc(f.require_group("layers"), "dict", "0.1.0")
    for path, X in _matrices(adata).items():
        group, _, key = path.rpartition("/")
        write_matrix(f[group] if group else f, key, X, dkw)


def _write_streamed_h5(tmp: str, adata, dkw: dict, background: bool = False) -> None:
    """Write the lazy matrices of ``adata`` into the HDF5 file ``tmp`` with the Rust sink.

    The sink creates the file and closes it before returning, so h5py can
    open it next (the two HDF5 libraries lock files separately).  A
    ``background`` write draws no bars (it runs in the caller's call
    context, which stops it).
    """
    for path, X in _matrices(adata).items():
        if not isinstance(X, BackedArray):
            continue
        with pass_bars(f"write {path}", enabled=False if background else None):
            _oom.write_h5ad_matrix(X.matrix, tmp, path, dkw.get("compression"),
                                   dkw.get("compression_opts"))


def _write_in_memory_h5(group, key: str, X, dkw: dict) -> None:
    """Write an in-memory matrix with anndata's encoder; lazy ones are already in the file."""
    if not isinstance(X, BackedArray):
        write_elem(group, key, X, dataset_kwargs=dkw)


def _write_rest(f, adata, dkw: dict) -> None:
    """Everything but the matrices, with anndata's encoders."""
    if adata.raw is not None:
        write_elem(f["raw"], "var", adata.raw.var, dataset_kwargs=dkw)
        write_elem(f["raw"], "varm", dict(adata.raw.varm), dataset_kwargs=dkw)
    write_elem(f, "obs", adata.obs, dataset_kwargs=dkw)
    write_elem(f, "var", adata.var, dataset_kwargs=dkw)
    write_elem(f, "obsm", dict(adata.obsm), dataset_kwargs=dkw)
    write_elem(f, "varm", dict(adata.varm), dataset_kwargs=dkw)
    write_elem(f, "obsp", dict(adata.obsp), dataset_kwargs=dkw)
    write_elem(f, "varp", dict(adata.varp), dataset_kwargs=dkw)
    write_elem(f, "uns", dict(adata.uns), dataset_kwargs=dkw)


def _write_all(f, adata, dkw: dict, write_matrix: WriteMatrix) -> None:
    _write_matrices(f, adata, dkw, write_matrix)
    _write_rest(f, adata, dkw)


def _fsync_path(path: str, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _prepare(adata, filename, convert_strings_to_categoricals: bool,
             file_target: bool = False) -> str:
    """Run the checks shared by both writers; return the absolute target path.

    With ``file_target`` (``.h5ad``) an existing directory there is refused:
    a file must not replace a directory. A Zarr store replaces only a store
    or an empty directory (never a folder of other files, nor a file).
    """
    adata._check_open()
    adata._check_writable()
    # Through a symlink, as anndata writes: the link stays, its file is replaced.
    target = os.path.realpath(os.path.abspath(os.fspath(filename)))
    if os.path.exists(target) and not (os.path.isfile(target) or os.path.isdir(target)):
        raise ValueError(f"'{target}' is not a regular file (a device, pipe or socket); "
                         "write to a file path")
    refuse_overwriting_sources(adata, target)
    if file_target and os.path.isdir(target):
        raise IsADirectoryError(f"'{target}' is a directory; an .h5ad target must be a file path")
    if not file_target and os.path.lexists(target) and not _replaceable_store(target):
        raise FileExistsError(
            f"'{target}' exists and is not a Zarr store; a store replaces only a store "
            "(or an empty directory): write to a new path")
    directory = os.path.dirname(target)
    _check_writable_directory(directory)
    remove_stale_tmp(directory)
    if convert_strings_to_categoricals:
        _categoricals(adata)
    return target


def _check_writable_directory(directory: str) -> None:
    """Refuse a target directory we cannot write in, naming it (not our temp file in it)."""
    try:
        is_dir = stat.S_ISDIR(os.stat(directory).st_mode)
    except FileNotFoundError:
        raise FileNotFoundError(f"directory '{directory}' does not exist") from None
    except OSError as e:  # EACCES on a parent, ENOTDIR for a file on the way
        raise type(e)(e.errno, f"cannot write in '{directory}': {e.strerror}") from None
    if not is_dir:
        raise NotADirectoryError(errno.ENOTDIR, f"cannot write in '{directory}': it is a file")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, f"cannot write in '{directory}': "
                              f"{os.strerror(errno.EACCES)}")


def _replaceable_store(path: str) -> bool:
    """Whether a Zarr write may replace ``path``: a Zarr v2/v3 store or an empty directory."""
    if not os.path.isdir(path):
        return False
    return not os.listdir(path) or _oom.is_zarr_node(path)


def _categoricals(adata) -> None:
    adata.strings_to_categoricals()
    if adata.raw is not None:
        adata.strings_to_categoricals(adata.raw.var)


def _fsync_tree(path: str) -> None:
    for root, _, files in os.walk(path):
        for name in files:
            _fsync_path(os.path.join(root, name))
        _fsync_path(root, directory=True)


def _tmp_path(target: str, ext: str) -> str:
    directory = os.path.dirname(target)
    return os.path.join(directory, f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}{ext}")


def _atomic(target: str, ext: str, write: Callable[[str], None],
            tmp: str | None = None) -> None:
    """Run ``write(tmp)`` on a temp path next to ``target``, then move it into place.

    A file replaces a file with one rename.  A store (directory) cannot be
    renamed over an existing one: the old target is first renamed to a temp
    name, so a crash in between leaves no target (and the old copy is
    removed as stale by the next write), never a mix of the two.  ``tmp``
    names a temp path already being written (see :class:`PendingWrite`).
    """
    directory = os.path.dirname(target)
    tmp = tmp or _tmp_path(target, ext)
    try:
        write(tmp)
        if os.path.isdir(tmp):
            _fsync_tree(tmp)
        else:
            _fsync_path(tmp)
        with _ctrl_c_deferred():
            _move_into_place(tmp, target)
    except BaseException:
        with _ctrl_c_deferred(), contextlib.suppress(OSError):
            _remove(tmp)
        raise
    _fsync_path(directory, directory=True)


def _move_into_place(tmp: str, target: str) -> None:
    """Rename ``tmp`` to ``target``, keeping a replaced file's permissions."""
    if os.path.isdir(tmp) or os.path.isdir(target):
        old = None
        if os.path.lexists(target):
            old = f"{tmp}-old"
            os.rename(target, old)
        os.rename(tmp, target)
        if old is not None:
            _remove(old)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(tmp, target)


@contextlib.contextmanager
def _ctrl_c_deferred():
    """Hold Ctrl-C until the block ends, so renames and clean-up are never cut halfway.

    Only the main thread receives signals; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        # None: a handler Python did not install, which it cannot restore either
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
    if caught:
        raise KeyboardInterrupt


def _dataset_kwargs(compression: str | None, compression_opts) -> dict:
    """h5py's dataset keywords for a compression the Rust sink writes too (h5py's rules)."""
    if compression is None:
        return {}
    dkw: dict = {"compression": compression}
    if compression == "gzip":
        if compression_opts is not None:
            try:
                level = operator.index(compression_opts)
            except TypeError:
                level = -1
            if isinstance(compression_opts, bool) or not 0 <= level <= 9:
                raise ValueError("gzip compression_opts must be an integer from 0 to 9, "
                                 f"got {compression_opts!r}")
            dkw["compression_opts"] = level
    elif compression == "lzf":
        if compression_opts is not None:
            raise ValueError("lzf compression accepts no compression_opts")
    else:
        raise ValueError(f"unknown compression {compression!r} (use 'gzip', 'lzf' or None)")
    return dkw


def _write_h5ad_file(tmp: str, adata, dkw: dict) -> None:
    """Everything ``_write_streamed_h5`` left out: in-memory matrices, obs, var, uns, …."""
    # "a": the sink created the file unless there was no lazy matrix
    with h5py.File(tmp, "a") as f:
        _write_all(f, adata, dkw, _write_in_memory_h5)


def write_h5ad(adata, filename, *, compression: str | None = None, compression_opts=None,
               convert_strings_to_categoricals: bool = True) -> None:
    """Write ``adata`` to ``filename`` atomically, streaming its lazy matrices.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM`.
    filename
        Target ``.h5ad`` path.  Must not be a file ``adata`` reads from.
    compression, compression_opts
        h5py compression for every dataset: ``"gzip"`` (``compression_opts``
        = level 0–9, default 4), ``"lzf"`` or None.  Lazy matrices are
        compressed on all cores.
    convert_strings_to_categoricals
        As anndata: string columns of obs/var (and raw.var) become
        categoricals, in place, before writing.

    Raises
    ------
    ValueError
        ``filename`` is (the same file as) one ``adata`` is reading from, or
        an unknown ``compression`` / bad ``compression_opts``.
    IsADirectoryError
        ``filename`` is an existing directory.
    """
    dkw = _dataset_kwargs(compression, compression_opts)
    target = _prepare(adata, filename, convert_strings_to_categoricals, file_target=True)

    def write(tmp: str) -> None:
        _write_streamed_h5(tmp, adata, dkw)
        _write_h5ad_file(tmp, adata, dkw)

    _atomic(target, ".h5ad", write)


class PendingWrite:
    """An ``.h5ad`` write whose matrices stream to disk in a background thread.

    Made by :func:`start_write_h5ad`. The thread streams the lazy matrices
    (the Rust sink); :meth:`finish` writes the rest of the object (in-memory
    matrices included) and moves the file into place, :meth:`abort` stops
    the thread and removes the temp file. Used as a context manager,
    leaving the block with an exception aborts it.
    """

    def __init__(self, adata, target: str, dkw: dict):
        self._target, self._dkw = target, dkw
        self._tmp = _tmp_path(target, ".h5ad")
        self._written = _matrices(adata)
        # abort() cancels it: the matrix being written stops at its next block
        self._ctx = _oom.CallContext()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(adata,),
                                        name="anndataoom-write-matrices", daemon=True)
        self._thread.start()

    def _run(self, adata) -> None:
        try:
            with self._ctx:
                _write_streamed_h5(self._tmp, adata, self._dkw, background=True)
        except BaseException as e:  # re-raised by finish()
            self._error = e

    def finish(self, adata, *, convert_strings_to_categoricals: bool = True) -> None:
        """Wait for the matrices, write everything else of ``adata``, move the file into place.

        Raises
        ------
        ValueError
            A matrix of ``adata`` (X, raw.X, a layer) was replaced or added
            since the write started: the file would not hold the object.
        """
        self._thread.join()
        try:
            if self._error is not None:
                raise self._error
            now = _matrices(adata)
            if now.keys() != self._written.keys() or any(
                    now[k] is not v for k, v in self._written.items()):
                raise ValueError("the matrices of the AnnData changed after start_write_h5ad(); "
                                 "write it again with write_h5ad()")
            if convert_strings_to_categoricals:
                _categoricals(adata)
        except BaseException:
            self.abort()
            raise

        _atomic(self._target, ".h5ad", lambda tmp: _write_h5ad_file(tmp, adata, self._dkw),
                tmp=self._tmp)

    def abort(self) -> None:
        """Stop the background write and remove its temp file (the target is untouched).

        The matrix being streamed stops at its next block; no further one starts.
        """
        self._ctx.cancel()
        self._thread.join()
        with contextlib.suppress(OSError):
            _remove(self._tmp)

    def __enter__(self) -> PendingWrite:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def start_write_h5ad(adata, filename, *, compression: str | None = None,
                     compression_opts=None) -> PendingWrite:
    """Start writing ``adata``'s matrices to ``filename`` in a background thread.

    X, raw.X and the layers are streamed to a temp file next to ``filename``
    while the caller goes on (e.g. computing the neighbour graph and the
    embedding from ``obsm``, which never reads X); :meth:`PendingWrite.finish`
    then writes obs/var/obsm/obsp/uns … as they are at that moment and moves
    the file into place atomically, as :func:`write_h5ad`. The matrices must
    not be replaced in between (``finish`` checks).

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM`.
    filename
        Target ``.h5ad`` path.  Must not be a file ``adata`` reads from.
    compression, compression_opts
        As :func:`write_h5ad`.

    Returns
    -------
    PendingWrite
        Call ``finish(adata)`` (or ``abort()``) on it.
    """
    dkw = _dataset_kwargs(compression, compression_opts)  # bad values raise before any work
    target = _prepare(adata, filename, convert_strings_to_categoricals=False, file_target=True)
    return PendingWrite(adata, target, dkw)


#: Values per chunk of the streamed Zarr arrays (4 MB of float32).
ZARR_CHUNK = 1 << 20


def write_zarr(adata, store, *, zarr_format: int | None = None, chunk_size: int = ZARR_CHUNK,
               shards: int | None = None, convert_strings_to_categoricals: bool = True) -> None:
    """Write ``adata`` to the Zarr store ``store`` atomically, streaming its lazy matrices.

    The layout is anndata's (``anndata.read_zarr`` and :func:`~anndataoom.read`
    open it).  X, layers and raw/X are encoded by the Rust core, block by
    block, with zarr-python's default codecs (v2: blosc/lz4 with shuffle;
    v3: zstd); the other elements use anndata's encoders.  Metadata is
    consolidated as anndata does.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM`.
    store
        Target directory (e.g. ``"out.zarr"``).  An existing store there is
        replaced; it must not be one ``adata`` reads from.
    zarr_format
        2 or 3; default ``anndata.settings.zarr_write_format``.
    chunk_size
        Values per chunk of the streamed arrays (dense matrices: whole rows
        of about this many values).
    shards
        Zarr v3 only: chunks per shard (one file per shard instead of per
        chunk); ``None`` writes unsharded arrays.
    convert_strings_to_categoricals
        As anndata.

    Raises
    ------
    ValueError
        Bad ``zarr_format``, ``chunk_size`` or ``shards`` (also: a shard of
        ``chunk_size × shards`` values over ``ANNDATAOOM_MAX_DENSE_BYTES``),
        or ``store`` is one ``adata`` reads from.
    FileExistsError
        ``store`` exists and is neither a Zarr store nor an empty directory.
    """
    import anndata
    import zarr

    fmt = anndata.settings.zarr_write_format if zarr_format is None else zarr_format
    if fmt not in (2, 3):
        raise ValueError(f"zarr_format must be 2 or 3, got {fmt!r}")
    if not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if shards is not None and (fmt != 3 or not isinstance(shards, int) or shards <= 0):
        raise ValueError(
            f"shards must be a positive integer and needs zarr_format=3, got {shards!r}"
        )
    held = chunk_size * (shards or 1) * 8  # a shard is built in memory, up to 8 bytes a value
    if held > max_dense_bytes():
        raise ValueError(
            f"chunk_size={chunk_size:,} × shards={shards or 1:,} values would hold "
            f"{held / 2**30:.2f} GiB in memory per array written (cap: "
            f"ANNDATAOOM_MAX_DENSE_BYTES={max_dense_bytes() / 2**30:.2f} GiB); use fewer")
    target = _prepare(adata, store, convert_strings_to_categoricals)

    def write(tmp: str) -> None:
        # zarr-python writes from its own IO thread: a Ctrl-C in this thread
        # would leave it writing into the temp store after its removal, so the
        # encoders' short writes run with Ctrl-C held (the Rust writes of the
        # matrices stop on it themselves).
        with _ctrl_c_deferred():
            root = zarr.open_group(tmp, mode="w-", zarr_format=fmt)

        def write_matrix_zarr(group, key: str, X, dkw: dict) -> None:
            if isinstance(X, BackedArray):
                path = f"{group.path}/{key}".strip("/")
                with pass_bars(f"write {path}"):
                    _oom.write_zarr_matrix(X.matrix, tmp, path, fmt, chunk_size, shards)
            else:
                with _ctrl_c_deferred():
                    write_elem(group, key, X, dataset_kwargs=dkw)

        # an explicit shards=None tells anndata's v3 encoders "unsharded" (without it
        # they warn that auto-sharding will become the default)
        dkw = {"shards": None} if fmt == 3 else {}
        _write_matrices(root, adata, dkw, write_matrix_zarr, setup=_ctrl_c_deferred)
        with _ctrl_c_deferred(), warnings.catch_warnings():
            _write_rest(root, adata, dkw)
            # consolidating v3 metadata is what anndata does too; zarr flags it as an extension
            warnings.filterwarnings("ignore", message="Consolidated metadata is currently not")
            zarr.consolidate_metadata(tmp, zarr_format=fmt)

    _atomic(target, ".zarr", write)
