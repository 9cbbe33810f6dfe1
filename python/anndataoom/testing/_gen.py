"""Generators of synthetic ``.h5ad`` files for the test-suite.

Self-contained: depends only on numpy, pandas, scipy, h5py and anndata —
never on the rest of :mod:`anndataoom` (so it works before the extension is
built).
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np

__all__ = ["gen_h5ad", "pbmc_like_counts"]

_MT_GENES = (
    "MT-ND1", "MT-ND2", "MT-CO1", "MT-CO2", "MT-ATP8", "MT-ATP6", "MT-CO3",
    "MT-ND3", "MT-ND4L", "MT-ND4", "MT-ND5", "MT-ND6", "MT-CYB",
)
_FORMATS = ("csr", "csc", "dense")
_DTYPES = ("float32", "float64", "int32", "int64")
_COMPRESSIONS = (None, "gzip", "lzf")


def pbmc_like_counts(
    n_obs: int,
    n_vars: int,
    seed: int = 0,
    *,
    density: float = 0.1,
    dtype="float32",
    empty_rows: Iterable[int] = (),
    empty_cols: Iterable[int] = (),
):
    """Sparse CSR matrix of non-negative integer counts (stored in ``dtype``).

    Detection probability varies per gene and per cell (mean ~ ``density``);
    detected entries are ``1 + NegBin`` with a gene-specific mean, so every
    stored value is >= 1 (no explicit zeros).  Rows/columns listed in
    ``empty_rows``/``empty_cols`` are entirely zero.
    """
    import scipy.sparse as sp

    n_obs, n_vars = int(n_obs), int(n_vars)
    if n_obs < 0 or n_vars < 0:
        raise ValueError("n_obs and n_vars must be >= 0")
    if not 0.0 <= density <= 1.0:
        raise ValueError("density must be in [0, 1]")
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)

    # gene-level detection weights and expression means, cell-level depth
    gene_w = rng.lognormal(0.0, 1.0, size=n_vars)
    gene_w /= gene_w.mean() if n_vars else 1.0
    gene_mu = rng.lognormal(0.0, 1.0, size=n_vars)
    cell_w = rng.lognormal(0.0, 0.3, size=n_obs)
    cell_w /= cell_w.mean() if n_obs else 1.0

    blocks = []
    block = max(1, 2_000_000 // max(n_vars, 1))
    for start in range(0, n_obs, block):
        stop = min(n_obs, start + block)
        p = np.clip(density * cell_w[start:stop, None] * gene_w[None, :], 0.0, 1.0)
        mask = rng.random((stop - start, n_vars)) < p
        rows, cols = np.nonzero(mask)
        mu = gene_mu[cols] * cell_w[start + rows]
        r = 2.0
        vals = 1 + rng.negative_binomial(r, r / (r + mu))
        blocks.append(
            sp.csr_matrix((vals.astype(dtype), (rows, cols)), shape=(stop - start, n_vars))
        )
    if blocks:
        X = sp.vstack(blocks, format="csr").astype(dtype)
    else:
        X = sp.csr_matrix((n_obs, n_vars), dtype=dtype)

    er = _check_idx(empty_rows, n_obs, "empty_rows")
    ec = _check_idx(empty_cols, n_vars, "empty_cols")
    if len(er) or len(ec):
        X = X.tocoo()
        keep = np.ones(X.nnz, dtype=bool)
        if len(er):
            keep &= ~np.isin(X.row, er)
        if len(ec):
            keep &= ~np.isin(X.col, ec)
        X = sp.csr_matrix(
            (X.data[keep], (X.row[keep], X.col[keep])), shape=(n_obs, n_vars), dtype=dtype
        )
    X = sp.csr_matrix(X, dtype=dtype)
    X.sum_duplicates()
    X.sort_indices()
    return X


def _check_idx(idx, n, name):
    idx = np.asarray(list(idx), dtype=np.int64)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"{name} out of range for size {n}: {idx.tolist()}")
    return np.unique(np.where(idx < 0, idx + n, idx))


def gen_h5ad(
    path,
    n_obs: int = 200,
    n_vars: int = 100,
    *,
    fmt: str = "csr",
    dtype: str = "float32",
    compression: str | None = None,
    density: float = 0.1,
    indptr_dtype: str = "int32",
    empty_rows: Sequence[int] = (),
    empty_cols: Sequence[int] = (),
    seed: int = 0,
    chunks: int | tuple | None = None,
    obs_extra: bool = True,
):
    """Write a synthetic ``.h5ad`` to ``path`` and return the AnnData written.

    Parameters
    ----------
    fmt
        ``"csr"``, ``"csc"`` (``X`` is a ``scipy.sparse.csc_matrix``) or
        ``"dense"`` (``np.ndarray``).
    dtype
        dtype of ``X`` (values are always non-negative integer counts).
    compression
        ``None``, ``"gzip"`` or ``"lzf"``, passed to ``write_h5ad`` and used
        for every rewritten dataset.
    indptr_dtype
        dtype of ``X/indptr`` on disk (sparse only; rewritten with h5py).
    empty_rows, empty_cols
        Indices of rows/columns that are entirely zero.
    chunks
        Force chunked storage.  Sparse: chunk length (elements) of
        ``X/data`` and ``X/indices`` (an int, or a 1-tuple; clipped to the
        array length, minimum 1).  Dense: an int
        ``c`` gives chunk shape ``(c, c)`` (clipped to the matrix shape), or
        pass a 2-tuple.  Small values (e.g. 64) give multi-chunk datasets.
    obs_extra
        If True (default) ``obs`` gets a categorical ``batch`` and numeric
        ``n_counts_sim``/``score`` columns and the file gets ``obsm['X_rand']``
        and a small ``uns`` dict.  If False only ``X``, obs/var names and the
        var columns are written.

    ``var`` always has a string ``gene_ids`` column and a bool ``mt``
    column; a few genes (at the end) are named ``MT-ND1``, ``MT-CO1``, …
    Returns the in-memory :class:`anndata.AnnData` exactly as written
    (``X`` in the requested format/dtype), so tests can compare against it.
    """
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {_FORMATS}, got {fmt!r}")
    if str(dtype) not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    if compression not in _COMPRESSIONS:
        raise ValueError(f"compression must be one of {_COMPRESSIONS}, got {compression!r}")
    if str(indptr_dtype) not in ("int32", "int64"):
        raise ValueError(f"indptr_dtype must be 'int32' or 'int64', got {indptr_dtype!r}")
    n_obs, n_vars = int(n_obs), int(n_vars)
    dtype = np.dtype(dtype)

    Xcsr = pbmc_like_counts(n_obs, n_vars, seed, density=density, dtype=dtype,
                            empty_rows=empty_rows, empty_cols=empty_cols)
    if fmt == "csr":
        X = Xcsr
    elif fmt == "csc":
        X = sp.csc_matrix(Xcsr)
        X.sort_indices()
    else:
        X = Xcsr.toarray()

    rng = np.random.default_rng([int(seed), 1])
    obs_names = pd.Index([f"cell_{i:06d}" for i in range(n_obs)], dtype=object)
    obs = pd.DataFrame(index=obs_names)
    if obs_extra:
        cats = ["batch_a", "batch_b", "batch_c"]
        obs["batch"] = pd.Categorical.from_codes(
            rng.integers(0, len(cats), size=n_obs), categories=cats
        )
        obs["n_counts_sim"] = np.asarray(Xcsr.sum(axis=1), dtype=np.float64).ravel()
        obs["score"] = rng.normal(size=n_obs).astype(np.float64)

    n_mt = min(len(_MT_GENES), max(1, n_vars // 20)) if n_vars >= 2 else 0
    gene_names = [f"Gene{j:05d}" for j in range(n_vars - n_mt)] + list(_MT_GENES[:n_mt])
    var = pd.DataFrame(index=pd.Index(gene_names, dtype=object))
    var["gene_ids"] = np.array([f"ENSG{j:011d}" for j in range(n_vars)], dtype=object)
    var["mt"] = np.array([g.startswith("MT-") for g in gene_names], dtype=bool)

    adata = ad.AnnData(X=X, obs=obs, var=var)
    if obs_extra:
        adata.obsm["X_rand"] = rng.normal(size=(n_obs, 3)).astype(np.float32)
        adata.uns["gen_params"] = {
            "seed": int(seed),
            "fmt": fmt,
            "dtype": str(dtype),
            "density": float(density),
        }
        adata.uns["note"] = "anndataoom synthetic test file"

    path = os.fspath(path)
    adata.write_h5ad(path, compression=compression)
    _postprocess(path, fmt, compression, indptr_dtype, chunks, X.shape)
    return adata


def _postprocess(path, fmt, compression, indptr_dtype, chunks, shape):
    """Rewrite X datasets with h5py to force indptr dtype and chunking."""
    import h5py

    with h5py.File(path, "r+") as f:
        if fmt == "dense":
            if chunks is not None:
                if isinstance(chunks, (tuple, list)):
                    c = tuple(int(x) for x in chunks)
                else:
                    c = (int(chunks), int(chunks))
                c = tuple(max(1, min(ci, si)) for ci, si in zip(c, shape, strict=False))
                _rewrite(f, "X", chunks=c, compression=compression)
            return
        g = f["X"]
        ip = g["indptr"]
        if ip.dtype != np.dtype(indptr_dtype):
            _rewrite(g, "indptr", dtype=np.dtype(indptr_dtype),
                     chunks=ip.chunks, compression=ip.compression)
        if chunks is not None:
            c = int(chunks[0]) if isinstance(chunks, (tuple, list)) else int(chunks)
            c = max(1, c)
            for name in ("data", "indices"):
                _rewrite(g, name, chunks=(c,), compression=compression)


def _rewrite(group, name, *, dtype=None, chunks=None, compression=None):
    """Replace ``group[name]`` by a copy with new dtype/chunks/compression, keeping attrs."""
    old = group[name]
    data = old[()]
    attrs = dict(old.attrs)
    if dtype is not None:
        data = data.astype(dtype)
    del group[name]
    kw = {}
    if chunks is not None:
        # chunk dims are clipped to the data shape (h5py requires it) and must be
        # >= 1; maxshape=None makes 0-length arrays chunkable
        kw["chunks"] = tuple(
            max(1, min(int(c), s)) for c, s in zip(chunks, data.shape, strict=False)
        )
        if data.size == 0:
            kw["maxshape"] = tuple(None for _ in data.shape)
    if compression is not None:
        kw["compression"] = compression
    ds = group.create_dataset(name, data=data, **kw)
    for k, v in attrs.items():
        ds.attrs[k] = v
