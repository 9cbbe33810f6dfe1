"""Comparison helpers: our lazy results against anndata/scanpy in memory."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: Every on-disk X format the generators write.
FORMATS = ("csr", "csc", "dense")


def dense(x) -> np.ndarray:
    """Any matrix (lazy, sparse, dense, view) as a dense ndarray."""
    if hasattr(x, "to_memory") and not isinstance(x, np.ndarray):
        x = x.to_memory()
    if sp.issparse(x):
        x = x.toarray()
    return np.asarray(x)


def assert_x_equal(ours, expected) -> None:
    """Exact equality of values and dtype (lazy vs anndata in memory)."""
    a, b = dense(ours), dense(expected)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    np.testing.assert_array_equal(a, b)


def assert_x_close(ours, theirs, *, rtol, atol=0.0, sparse=None) -> None:
    """Lazy X vs in-memory X: dtype, (optionally) sparsity, values within tolerance."""
    x = ours.to_memory() if hasattr(ours, "to_memory") else ours
    if sparse is not None:
        assert sp.issparse(x) == sparse
    assert x.dtype == theirs.dtype, (x.dtype, theirs.dtype)
    np.testing.assert_allclose(dense(x), dense(theirs), rtol=rtol, atol=atol)


def assert_adata_equal(ours, expected, *, layers: bool = True) -> None:
    """Compare an AnnDataOOM (or in-memory AnnData) with anndata in memory."""
    assert ours.shape == expected.shape
    assert list(ours.obs_names) == list(expected.obs_names)
    assert list(ours.var_names) == list(expected.var_names)
    assert_x_equal(ours.X, expected.X)
    assert list(ours.obs.columns) == list(expected.obs.columns)
    for c in expected.obs.columns:
        np.testing.assert_array_equal(np.asarray(ours.obs[c]), np.asarray(expected.obs[c]))
    for c in expected.var.columns:
        np.testing.assert_array_equal(np.asarray(ours.var[c]), np.asarray(expected.var[c]))
    assert set(ours.obsm.keys()) == set(expected.obsm.keys())
    for k in expected.obsm:
        np.testing.assert_array_equal(dense(ours.obsm[k]), dense(expected.obsm[k]))
    if layers:
        assert set(ours.layers.keys()) == set(expected.layers.keys())
        for k in expected.layers:
            assert_x_equal(ours.layers[k], expected.layers[k])


def assert_frame_close(
    ours: pd.DataFrame, theirs: pd.DataFrame, *, rtol, atol=0.0, cols=None, dtypes=True
) -> None:
    """Assert same columns (in order), same dtypes; ints/bools exact, floats within rtol/atol."""
    if cols is None:
        cols = list(theirs.columns)
        assert list(ours.columns) == cols
    assert list(ours.index) == list(theirs.index)
    for c in cols:
        a, b = ours[c], theirs[c]
        if dtypes:
            assert a.dtype == b.dtype, (c, a.dtype, b.dtype)
        a, b = np.asarray(a), np.asarray(b)
        if b.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True, err_msg=c)
        else:
            np.testing.assert_array_equal(a, b, err_msg=c)


def dir_listing(path) -> set[str]:
    """Names in the directory of ``path`` (to prove nothing was written beside it)."""
    return set(os.listdir(os.path.dirname(os.fspath(path))))
