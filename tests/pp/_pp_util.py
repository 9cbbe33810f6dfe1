"""Comparison helpers for the pp tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


def to_dense(x):
    if hasattr(x, "to_memory") and not isinstance(x, np.ndarray):
        x = x.to_memory()
    if sp.issparse(x):
        x = x.toarray()
    return np.asarray(x)


def assert_frame_close(ours: pd.DataFrame, theirs: pd.DataFrame, *, rtol, atol=0.0, cols=None,
                       dtypes=True):
    """Same columns (in order), same dtypes; ints/bools exact, floats within rtol/atol."""
    cols = list(theirs.columns) if cols is None else cols
    if cols is None or cols == list(theirs.columns):
        assert list(ours.columns) == list(theirs.columns)
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


def assert_x_close(ours, theirs, *, rtol, atol=0.0, sparse=None):
    """Lazy X vs in-memory X: dtype, (optionally) sparsity, values."""
    x = ours.to_memory() if hasattr(ours, "to_memory") else ours
    if sparse is not None:
        assert sp.issparse(x) == sparse
    assert x.dtype == theirs.dtype, (x.dtype, theirs.dtype)
    np.testing.assert_allclose(to_dense(x), to_dense(theirs), rtol=rtol, atol=atol)
