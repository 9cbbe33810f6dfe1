"""TransformedBackedArray / ScaledBackedArray behave like BackedArray over a lazy plan."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import anndataoom as oom
from anndataoom import _oom
from anndataoom.testing import dense


@pytest.fixture
def counts(make_h5ad, fmt):
    path, mem = make_h5ad(n_obs=70, n_vars=25, fmt=fmt, density=0.3, dtype="int32")
    return path, dense(mem.X).astype(np.float64)


def _log1p(path):
    return oom.TransformedBackedArray(_oom.lazy_log1p(_oom.open(str(path), "X")))


def _scaled(path, full):
    mean = full.mean(axis=0)
    std = full.std(axis=0, ddof=1)
    std[std == 0] = 1
    m = _oom.lazy_scale(_oom.open(str(path), "X"), mean, std, max_value=3.0)
    return oom.ScaledBackedArray(m), np.clip((full - mean) / std, -3, 3)


def test_log1p_array(counts):
    path, full = counts
    X = _log1p(path)
    exp = np.log1p(full)
    assert X.transforms == ("log1p",)
    assert "log1p" in repr(X)
    assert X.dtype == np.float64
    np.testing.assert_allclose(X.toarray(), exp, rtol=1e-12)
    np.testing.assert_allclose(X.sum(axis=0), exp.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(X.mean(axis=1), exp.mean(axis=1), rtol=1e-12)
    assert X.nnz == (np.count_nonzero(exp) if X.format == "dense" else sp.csr_matrix(full).nnz)
    rows, cols = np.array([5, 5, 0, -1]), np.array([3, 0])
    sub = X[rows][:, cols]
    assert type(sub) is oom.TransformedBackedArray and sub.transforms == ("log1p",)
    np.testing.assert_allclose(dense(sub), exp[rows][:, cols])
    col = X[:, 2]
    np.testing.assert_allclose(dense(col).ravel(), exp[:, 2])
    for s, e, block in X.chunked(16):
        np.testing.assert_allclose(dense(block), exp[s:e])


def test_scaled_array(counts):
    path, full = counts
    X, exp = _scaled(path, full)
    assert isinstance(X, oom.TransformedBackedArray)
    assert X.format == "dense"  # scaling with centring densifies
    np.testing.assert_allclose(X.toarray(), exp, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(X.sum(axis=0), exp.sum(axis=0), rtol=1e-4, atol=1e-4)
    sub = X[::-3, [4, 4, 1]]
    assert type(sub) is oom.ScaledBackedArray
    np.testing.assert_allclose(sub.toarray(), exp[::-3][:, [4, 4, 1]], rtol=1e-5, atol=1e-5)


def test_transforms_in_adata(counts, tmp_path):
    path, full = counts
    a = oom.read(path)
    a.layers["counts"] = a.X
    a.X = _log1p(path)
    X_scaled, exp_scaled = _scaled(path, full)
    a.layers["scaled"] = X_scaled
    assert "log1p" in repr(a)
    assert a.layers["counts"].transforms == ()
    # subsetting keeps every lazy array aligned
    idx, genes = np.array([3, 1, 1]), [a.var_names[2], a.var_names[7]]
    s = a[idx, genes]
    np.testing.assert_allclose(dense(s.X), np.log1p(full)[idx][:, [2, 7]])
    np.testing.assert_allclose(dense(s.layers["counts"]), full[idx][:, [2, 7]])
    np.testing.assert_allclose(dense(s.layers["scaled"]), exp_scaled[idx][:, [2, 7]],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.obs_vector(a.var_names[4]), np.log1p(full)[:, 4])
    # to_memory and write apply the transforms
    m = a.to_memory()
    np.testing.assert_allclose(dense(m.X), np.log1p(full))
    out = tmp_path / "t.h5ad"
    a.write_h5ad(out)
    back = ad.read_h5ad(out)
    np.testing.assert_allclose(dense(back.X), np.log1p(full))
    assert sp.issparse(back.X) == (a.X.format == "csr")
    assert isinstance(back.layers["scaled"], np.ndarray)
    np.testing.assert_allclose(back.layers["scaled"], exp_scaled, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(dense(back.layers["counts"]), full)
