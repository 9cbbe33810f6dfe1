"""Lazy matrices: ``BackedArray`` and its transform subclasses.

A :class:`BackedArray` wraps one immutable :class:`anndataoom._oom.Matrix`
(a stored matrix seen through a row/column selection and, later, a chain of
lazy transforms).  Nothing is read until a result is asked for; subsetting
composes into the Rust plan and returns a new ``BackedArray``.

Row blocks come back as ``scipy.sparse.csr_matrix`` (sparse source, whatever
its on-disk CSR/CSC layout) or ``numpy.ndarray`` (dense source).
"""

from __future__ import annotations

import copy as _copy
import os
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from anndataoom import _oom
from anndataoom._core._col_moments import ColMoments
from anndataoom._core._counts import AfterRowFilter, Counts, after_cols, after_rows
from anndataoom._core._guard import check_fits_in_ram, unsupported
from anndataoom._core._index import positions
from anndataoom._core._lazy import LazyMatrix, is_int
from anndataoom._core._streamed import StreamedReads
from anndataoom._distributed import run_pass

__all__ = [
    "BackedArray",
    "TransformedBackedArray",
    "ScaledBackedArray",
    "DEFAULT_CHUNK_SIZE",
    "BLOCK_VALUES",
    "block_from_raw",
]

#: Rows per block yielded by :meth:`BackedArray.chunked` when not given.
DEFAULT_CHUNK_SIZE = 1000
#: Stored values per block when the whole view is streamed (to_memory, write).
BLOCK_VALUES = 1 << 22


def block_from_raw(raw: tuple):
    """Turn a ``Matrix.read`` tuple into a ``csr_matrix`` or ``ndarray``."""
    if raw[0] == "csr":
        _, data, indices, indptr, shape = raw
        m = sp.csr_matrix((data, indices, indptr), shape=tuple(int(s) for s in shape))
        m.has_canonical_format = True
        return m
    return raw[1]


def _fill(blocks, n_rows: int, n_cols: int, dtype, nnz: int | None):
    """One matrix from an iterator of row blocks, each copied into place and dropped.

    ``nnz`` is the stored entries of a sparse result (``None``: dense). The
    output's pages are touched only as they are written, so the peak stays
    near one copy of the result plus a block (scipy's vstack and
    np.concatenate hold every block and the whole output).
    """
    if nnz is None:
        out = np.empty((n_rows, n_cols), dtype)
        for a, b, block in blocks:
            out[a:b] = block
        return out
    idx = np.int64 if max(nnz, n_cols) > np.iinfo(np.int32).max else np.int32
    data, indices = np.empty(nnz, dtype), np.empty(nnz, idx)
    indptr = np.empty(n_rows + 1, idx)
    indptr[0] = at = 0
    for a, b, block in blocks:
        k = int(block.indptr[-1])
        data[at:at + k] = block.data[:k]
        indices[at:at + k] = block.indices[:k]
        indptr[a + 1:b + 1] = block.indptr[1:] + at
        at += k
    m = sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols), copy=False)
    m.has_canonical_format = True
    return m


def _draining(blocks: list, ranges: list):
    """``(start, end, block)`` of blocks read ahead, each released once yielded."""
    blocks.reverse()
    for a, b in ranges:
        yield a, b, blocks.pop()


def _split_key(key) -> tuple:
    if not isinstance(key, tuple):
        key = (key,)
    # a 0-d integer array indexes as its integer does (numpy drops that axis)
    key = tuple(slice(None) if k is Ellipsis else
                k.item() if isinstance(k, np.ndarray) and k.ndim == 0 and k.dtype.kind in "iu"
                else k for k in key)
    if len(key) == 1:
        key = (key[0], slice(None))
    if len(key) != 2:
        raise IndexError(f"too many indices for a 2-D array: {len(key)} were given")
    for k in key:
        _check_key_part(k)
    return key


def _check_key_part(k) -> None:
    """Refuse what numpy refuses: float positions (even whole ones), index arrays of 2-D."""
    if isinstance(k, slice) or isinstance(k, (int, np.integer)):
        return
    if isinstance(k, (float, np.floating)):
        raise IndexError("only integers, slices (`:`), ellipsis (`...`), and integer or "
                         f"boolean arrays are valid indices, got {k!r}")
    arr = np.asarray(k.to_numpy() if hasattr(k, "to_numpy") else k)
    if np.issubdtype(arr.dtype, np.floating) and arr.size:  # `[]` is float64 too
        raise IndexError(f"arrays used as indices must be of integer (or boolean) type, "
                         f"got {arr.dtype}")
    if arr.ndim > 1:
        raise IndexError(f"index arrays of a lazy matrix must be 1-D, got shape {arr.shape}")


class BackedArray(StreamedReads, LazyMatrix):
    """A lazy, read-only 2-D matrix backed by a file.

    Parameters
    ----------
    matrix
        The :class:`anndataoom._oom.Matrix` to wrap (kept as ``.matrix``).
    transforms
        Names of the lazy transforms applied to the source (shown by
        ``repr``); the transforms themselves live in ``matrix``.  Default:
        read from the matrix's plan.

    Notes
    -----
    ``sum`` and ``mean`` follow numpy/scipy semantics for the result dtype
    but always return 1-D ``numpy.ndarray`` for ``axis=0/1`` (scipy returns a
    2-D ``np.matrix``), like anndata's backed and dask arrays.

    Integer indexing follows the in-memory type: for a sparse source,
    ``X[:, j]`` is a ``csr_matrix`` of shape ``(n_obs, 1)`` and ``X[i, :]``
    one of shape ``(1, n_vars)`` (as scipy); for a dense source they are
    1-D arrays (as numpy).  Slices, integer arrays and boolean masks give a
    new lazy ``BackedArray``; two arrays select the outer product of rows
    and columns (like anndata, unlike numpy's pointwise indexing).

    Subclasses that keep per-row or per-column Python state must override
    :meth:`_derive` so that state follows subsetting; anything else is
    carried over unchanged.
    """

    def __init__(
        self,
        matrix: _oom.Matrix,
        *,
        transforms: tuple[str, ...] | list[str] | None = None,
    ):
        if not isinstance(matrix, _oom.Matrix):
            raise TypeError(f"expected an anndataoom._oom.Matrix, got {type(matrix).__name__}")
        self.matrix = matrix
        if transforms is None:
            transforms = _oom.op_names(matrix)
        self.transforms = tuple(transforms)
        self._stats: tuple | None = None
        self._nnz: int | None = None
        # f64 row sums left by a QC pass over this very matrix (normalize_total reuses them)
        self._row_sum: np.ndarray | None = None
        # exact sums and positive counts of a count matrix, from QC or a parent (see _counts)
        self._known_counts: Counts | AfterRowFilter | None = None
        # column moments of the unmapped values left by seurat's HVG pass (scale reuses them)
        self._col_moments: ColMoments | None = None

    # -- derivation ---------------------------------------------------------

    def _derive(self, matrix: _oom.Matrix, rows=None, cols=None) -> BackedArray:
        """Return a copy of ``self`` (same class and metadata) wrapping ``matrix``.

        ``rows``/``cols`` are the positions (into ``self``) that produced
        ``matrix`` (``None`` = all), for subclasses that subset own state.
        """
        new = _copy.copy(self)
        new.matrix = matrix
        new._stats = None
        new._nnz = None
        new._row_sum = None
        new._known_counts = None
        new._col_moments = None
        return new

    def _subset(self, rows: np.ndarray | None, cols: np.ndarray | None) -> BackedArray:
        """Lazy subset by non-negative int64 positions (``None`` = all)."""
        if rows is None and cols is None:
            return self._derive(self.matrix)
        rows = None if rows is None else np.ascontiguousarray(rows, dtype=np.int64)
        cols = None if cols is None else np.ascontiguousarray(cols, dtype=np.int64)
        new = self._derive(self.matrix.subset(rows, cols), rows, cols)
        if cols is None:
            new._known_counts = after_rows(self._known_counts, rows, self._removed_counts)
        elif rows is None:
            new._known_counts = after_cols(self._known_counts, cols)
            if self._col_moments is not None:
                new._col_moments = self._col_moments.take_cols(cols)
        return new

    def _removed_counts(self, rows: np.ndarray) -> tuple:
        """``positive_counts`` of a few rows of ``self``, read here."""
        return run_pass(self.matrix.subset(rows, None), _oom.positive_counts).finalize()

    def copy(self) -> BackedArray:
        """Return a new lazy array over the same data (cheap: the data is immutable)."""
        new = self._derive(self.matrix)
        new._known_counts = self._known_counts
        new._col_moments = self._col_moments
        return new

    def __deepcopy__(self, memo) -> BackedArray:
        return self.copy()

    def astype(self, dtype, copy: bool = True) -> BackedArray:
        """Return the same lazy array with values cast to ``dtype`` when read."""
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self.copy() if copy else self
        if dtype == np.bool_:
            # The core has no boolean type; a cast to uint8 would truncate 0.5 to 0.
            raise NotImplementedError(
                "astype(bool) is not supported on a lazy matrix: count non-zeros with "
                "X.getnnz(axis) or X.count_nonzero(), or cast the blocks of X.chunked(n)")
        return self._derive(_oom.lazy_cast(self.matrix, dtype.name))

    def _lazy_op(self, op, out_dtype: np.dtype, *args, **kwargs) -> BackedArray:
        """Apply the lazy transform ``op`` (an ``_oom.lazy_*`` function) in a float type.

        The result is cast back when ``out_dtype`` is an integer.
        """
        float_dtype = out_dtype if np.issubdtype(out_dtype, np.floating) else np.dtype(np.float64)
        m = op(self.matrix, *args, dtype=float_dtype.name, **kwargs)
        new = TransformedBackedArray(m)
        return new if float_dtype == out_dtype else new.astype(out_dtype)

    def multiply(self, other) -> BackedArray:
        """Elementwise product with a scalar, a row vector or a column vector (lazy).

        ``other`` of shape ``(n_rows, 1)`` scales rows; ``(1, n_cols)`` or
        ``(n_cols,)`` scales columns (as scipy's ``multiply``).  The result
        dtype is numpy's for the two operands; implicit zeros stay zero.
        """
        if sp.issparse(other) or isinstance(other, LazyMatrix):
            raise unsupported("multiply by a sparse or lazy matrix",
                              hint="Multiply by a scalar or a dense row/column vector.")
        o = np.asarray(other)
        if o.dtype.kind not in "biuf":
            raise TypeError(f"multiply needs numbers, got dtype {o.dtype}")
        out_dtype = np.result_type(self.dtype, other if np.ndim(other) == 0 else o.dtype)
        if isinstance(other, int) and out_dtype.kind in "iu":
            np.asarray(other, dtype=out_dtype)  # numpy's OverflowError for int8 * 1000
        n_rows, n_cols = self.shape
        if o.ndim == 0:
            return self._lazy_op(_oom.lazy_multiply, out_dtype, float(o))
        if o.shape in ((n_cols,), (1, n_cols)):
            col = np.ascontiguousarray(o.ravel(), dtype=np.float64)
            return self._lazy_op(_oom.lazy_multiply, out_dtype, 1.0, col=col)
        if o.shape == (n_rows, 1):
            row = np.ascontiguousarray(o.ravel(), dtype=np.float64)
            return self._lazy_op(_oom.lazy_multiply, out_dtype, 1.0, row=row)
        if o.shape == (n_rows, n_cols):
            raise unsupported("multiply by a full matrix",
                              hint="Only scalars and row/column vectors multiply lazily.")
        raise ValueError(f"inconsistent shapes: {self.shape} and {o.shape}")

    def power(self, n, dtype=None) -> BackedArray:
        """Elementwise power of the values (lazy), as scipy's ``power``.

        Only the stored values are raised (implicit zeros stay zero); like
        scipy, ``n == 0`` is refused for a sparse view (it would densify).
        """
        if np.ndim(n) != 0:
            raise NotImplementedError("input is not scalar")
        if n == 0 and self.is_sparse:
            raise NotImplementedError("zero power is not supported as it would densify the matrix.")
        base = self if dtype is None else self.astype(dtype)
        out_dtype = np.result_type(base.dtype, n)
        if np.issubdtype(out_dtype, np.integer) and n < 0:
            raise ValueError("Integers to negative integer powers are not allowed.")
        return base._lazy_op(_oom.lazy_power, out_dtype, float(n))

    @property
    def T(self):
        """Lazy transpose (a :class:`~anndataoom._core._transpose.TransposedArray`)."""
        from anndataoom._core._transpose import TransposedArray

        return TransposedArray(self)

    def transpose(self, axes=None, copy: bool = False):
        """Lazy transpose (see :attr:`T`)."""
        if axes is not None and tuple(axes) != (1, 0):
            raise ValueError("axes must be None or (1, 0) for a 2-D matrix")
        return self.T

    # -- attributes ---------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_cols)`` of the view."""
        r, c = self.matrix.shape
        return int(r), int(c)

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the values."""
        return np.dtype(self.matrix.dtype)

    @property
    def is_sparse(self) -> bool:
        """Whether blocks are sparse (``csr_matrix``)."""
        return bool(self.matrix.is_sparse)

    @property
    def format(self) -> str:
        """``"csr"`` for a sparse view (blocks are CSR), ``"dense"`` otherwise."""
        return "csr" if self.is_sparse else "dense"

    @property
    def source_format(self) -> str:
        """On-disk encoding of the source: ``csr_matrix``, ``csc_matrix`` or ``array``."""
        return self.matrix.format

    @property
    def path(self) -> str:
        """Path of the source file."""
        return self.matrix.path

    @property
    def key(self) -> str:
        """Element of the source file (``X``, ``layers/counts``, ...)."""
        return self.matrix.key

    @property
    def nnz(self) -> int:
        """Stored entries of the view (sparse) or non-zeros (dense); cached."""
        if self._nnz is None:
            quick = self._quick_nnz()
            if quick is not None:
                self._nnz = quick
            else:
                self._nnz = int(self._axis_sums()[1].sum())
        return self._nnz

    def _quick_nnz(self) -> int | None:
        """Return nnz if known without a pass (an untransformed whole sparse source)."""
        m = self.matrix
        if m.is_identity and m.is_sparse and _oom.is_untransformed(m):
            return m.stored_nnz
        return None

    def _known_nnz(self) -> int | None:
        """Return nnz if known without reading (for repr)."""
        return self._nnz if self._nnz is not None else self._quick_nnz()

    # -- reductions ---------------------------------------------------------

    def _axis_sums(self) -> tuple:
        if self._stats is None:
            self._stats = self.matrix.axis_sums()
        return self._stats

    def _sum_dtype(self) -> np.dtype:
        return np.zeros(0, dtype=self.dtype).sum().dtype

    def _mean_dtype(self) -> np.dtype:
        return self.dtype if np.issubdtype(self.dtype, np.floating) else np.dtype(np.float64)

    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        """Sum over all entries, per column (``axis=0``) or per row (``axis=1``).

        Returns a numpy scalar or a 1-D ``ndarray`` (length ``n_cols`` for
        ``axis=0``, ``n_rows`` for ``axis=1``) of numpy's result dtype for the
        input dtype (e.g. int32 → int64), or ``dtype`` if given.  Accumulation
        is in float64.  ``out`` is not supported (the matrix is lazy);
        ``keepdims`` keeps the reduced axis as numpy does.
        """
        if out is not None:
            raise unsupported("sum(out=...)")
        if keepdims:
            return self._keepdims(self.sum(axis, dtype), axis)
        ax = self._axis(axis)
        out_dtype = np.dtype(dtype) if dtype is not None else self._sum_dtype()
        row_sum, _, col_sum, _ = self._axis_sums()
        if ax is None:
            return out_dtype.type(row_sum.sum())
        return (col_sum if ax == 0 else row_sum).astype(out_dtype)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        """Mean over all entries, per column (``axis=0``) or per row (``axis=1``).

        Result dtype: the input dtype for floating inputs, float64 otherwise
        (as numpy/scipy); 1-D ``ndarray`` for ``axis=0/1``.  An empty axis
        gives NaN.  ``out`` is not supported; ``keepdims`` as numpy.
        """
        if out is not None:
            raise unsupported("mean(out=...)")
        if keepdims:
            return self._keepdims(self.mean(axis, dtype), axis)
        ax = self._axis(axis)
        out_dtype = np.dtype(dtype) if dtype is not None else self._mean_dtype()
        row_sum, _, col_sum, _ = self._axis_sums()
        n_rows, n_cols = self.shape
        with np.errstate(invalid="ignore", divide="ignore"):
            if ax is None:
                total = row_sum.sum()
                return out_dtype.type(total / (n_rows * n_cols) if n_rows * n_cols else np.nan)
            if ax == 0:
                return (col_sum / n_rows if n_rows else np.full(n_cols, np.nan)).astype(out_dtype)
            return (row_sum / n_cols if n_cols else np.full(n_rows, np.nan)).astype(out_dtype)

    def __array_function__(self, func, types, args, kwargs):
        """``np.nanmean(X, axis)`` streams (scanpy's ``score_genes`` calls it on all of X).

        Other numpy functions run numpy's own code on the object: reductions
        call the streamed methods, the rest convert through ``__array__``.
        """
        if func is np.nanmean and args and args[0] is self:
            params = dict(zip(("axis", "dtype"), args[1:], strict=False)) | kwargs
            if set(params) <= {"axis", "dtype"}:
                r = self.mean(params.get("axis"), dtype=params.get("dtype"))
                if not np.isnan(r).any():  # else NaNs are stored: numpy skips them
                    return r
        return func._implementation(*args, **kwargs)

    # -- reading --------------------------------------------------------------

    def _read(self, start: int, end: int):
        return block_from_raw(self.matrix.read(int(start), int(end)))

    def _iter_ranges(self, ranges, prefetch: bool):
        """Yield ``(start, end, block)`` for ``ranges``, prefetching the next block.

        With ``prefetch``, the next block is read in a background thread while
        the caller works on the current one (the Rust read releases the GIL).
        """
        ranges = list(ranges)
        if not prefetch or len(ranges) < 2:
            for a, b in ranges:
                yield a, b, self._read(a, b)
            return
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anndataoom-prefetch")
        done = False
        try:
            fut = pool.submit(self._read, *ranges[0])
            for i, (a, b) in enumerate(ranges):
                block = fut.result()
                if i + 1 < len(ranges):
                    fut = pool.submit(self._read, *ranges[i + 1])
                yield a, b, block
            done = True
        finally:
            # On Ctrl-C, an error or an abandoned iteration, do not wait for
            # the block being prefetched (it may be large): return at once.
            pool.shutdown(wait=done, cancel_futures=True)

    def chunked(
        self, chunk_size: int | None = None, *, prefetch: bool = True
    ) -> Iterator[tuple[int, int, object]]:
        """Yield ``(start, end, block)`` over row blocks of ``chunk_size`` rows.

        ``block`` is a ``csr_matrix`` (sparse) or ``ndarray`` (dense) holding
        rows ``start:end``.  ``chunk_size=None`` uses :data:`DEFAULT_CHUNK_SIZE`.
        With ``prefetch`` the next block is read while the current one is used.
        """
        chunk_size = DEFAULT_CHUNK_SIZE if chunk_size is None else int(chunk_size)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        n = self.shape[0]
        ranges = ((s, min(n, s + chunk_size)) for s in range(0, n, chunk_size))
        return self._iter_ranges(ranges, prefetch)

    def blocks(self, target_values: int = BLOCK_VALUES) -> list[tuple[int, int]]:
        """Row ranges holding about ``target_values`` stored values each."""
        return [(int(a), int(b)) for a, b in self.matrix.blocks(int(target_values))]

    def iter_blocks(self, target_values: int = BLOCK_VALUES, *, prefetch: bool = True):
        """Yield ``(start, end, block)`` over blocks of about ``target_values`` values."""
        return self._iter_ranges(self.blocks(target_values), prefetch)

    def to_memory(self):
        """Load the whole view into memory: ``csr_matrix`` (sparse) or ``ndarray``."""
        ranges = self.blocks()
        if len(ranges) <= 1:
            return self._read(*(ranges[0] if ranges else (0, 0)))
        n, m = self.shape
        if not self.is_sparse:
            return _fill(self._iter_ranges(ranges, prefetch=True), n, m, self.dtype, None)
        nnz = self._known_nnz()
        if nnz is not None:
            return _fill(self._iter_ranges(ranges, prefetch=True), n, m, self.dtype, nnz)
        # the size of a selection is known once read: all blocks first, freed as copied
        blocks = [self._read(a, b) for a, b in ranges]
        nnz = sum(int(b.indptr[-1]) for b in blocks)
        return _fill(_draining(blocks, ranges), n, m, self.dtype, nnz)

    def to_dask(self, chunks: int | None = None):
        """Return a ``dask.array.Array`` of the view, blocks read by the Rust reader.

        Parameters
        ----------
        chunks
            Rows per chunk.  ``None`` uses row blocks of about
            :data:`BLOCK_VALUES` stored values (the size the streamed
            kernels use), so chunks are even in bytes rather than in rows.

        Returns
        -------
        dask.array.Array
            Same shape and dtype; chunks are ``scipy.sparse.csr_matrix``
            (sparse view; a subclass whose reductions accept ``keepdims``
            and whose ``size`` is numpy's, so dask's ``.sum()``, ``.mean()``,
            ``.max()`` and ``.min()`` work; not ``.var()``: ``**`` of a scipy
            matrix is a matrix power) or
            ``numpy.ndarray``, with the lazy transforms applied.  The graph
            holds a small description (path, key, selection and transform
            parameters), never data or file handles, so it can run on
            ``dask.distributed`` worker processes: each opens the file
            itself.

        Raises
        ------
        ValueError
            When the view was built from an ``_oom.Matrix`` whose origin was
            not recorded, so no worker could rebuild it.
        """
        from anndataoom._core._dask import to_dask

        return to_dask(self, chunks)

    def toarray(self) -> np.ndarray:
        """Return the whole view as a dense ``ndarray`` (refused if it cannot fit in RAM)."""
        n, m = self.shape
        check_fits_in_ram(n * m * self.dtype.itemsize,
                          f"a dense {n:,} × {m:,} {self.dtype} array (toarray)")
        m = self.to_memory()
        return m.toarray() if sp.issparse(m) else np.asarray(m)

    def __iter__(self):
        """Iterate over rows (1 × n ``csr_matrix`` or 1-D ``ndarray``), read in blocks.

        Also makes the array list-like for pandas, which then converts it with
        ``__array__`` (``pd.DataFrame(X[:, genes])`` works).
        """
        for _, _, block in self.chunked():
            for i in range(block.shape[0]):
                yield block[i]

    # -- indexing -----------------------------------------------------------

    def __getitem__(self, key):
        if key is None or isinstance(key, tuple) and any(k is None for k in key):
            return self._getitem_newaxis(key if isinstance(key, tuple) else (key,))
        rk, ck = _split_key(key)
        n_rows, n_cols = self.shape
        rows = positions(rk, n_rows)
        cols = positions(ck, n_cols)
        r_int, c_int = is_int(rk), is_int(ck)
        sub = self._subset(rows, cols)
        if not (r_int or c_int):
            return sub
        block = sub.to_memory()
        if sp.issparse(block):
            if r_int and c_int:
                return block[0, 0]
            return block
        if r_int and c_int:
            return block[0, 0]
        return block[0, :] if r_int else block[:, 0]

    def _getitem_newaxis(self, key: tuple):
        """``X[None, i]`` or ``X[i, None]``: row ``i`` as a 1 × n matrix, as numpy gives."""
        rest = [k for k in key if k is not None]
        if len(key) == 2 and len(rest) == 1 and is_int(rest[0]):
            row = self[rest[0]]
            return row if sp.issparse(row) else row[None, :]
        raise IndexError(f"np.newaxis (None) in {key!r} would make a 3-D array; a lazy matrix "
                         "is 2-D (X[None, i] and X[i, None] give row i as 1 × n)")

    # -- display ------------------------------------------------------------

    def _describe(self) -> str:
        r, c = self.shape
        parts = [f"shape=({r}, {c})", f"dtype={self.dtype}", f"format={self.format}"]
        nnz = self._known_nnz()
        if nnz is not None and r * c:
            parts.append(f"nnz={nnz}, density={nnz / (r * c):.2%}")
        parts.append(f"source='{os.path.basename(self.path)}:{self.key}'")
        if not self.matrix.is_identity:
            parts.append("subset")
        if self.transforms:
            parts.append("transforms=" + " → ".join(self.transforms))
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._describe()})"


class TransformedBackedArray(BackedArray):
    """A :class:`BackedArray` whose matrix carries lazy per-block transforms.

    Behaves exactly like :class:`BackedArray`; ``transforms`` names the
    chain for display (e.g. ``("normalize_total", "log1p")``).
    """


class ScaledBackedArray(TransformedBackedArray):
    """A lazily z-scored :class:`TransformedBackedArray` (scale, clip)."""
