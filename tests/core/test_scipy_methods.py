"""``a.X``'s scipy read-only methods (streamed) and lazy ops vs scipy/numpy on the same data."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp

import anndataoom as oom
from anndataoom._core._transpose import TransposedArray
from anndataoom.testing import FORMATS


def _mem(X):
    """The in-memory oracle: scipy CSR for a sparse source, ndarray for dense."""
    return X.tocsr() if sp.issparse(X) else np.asarray(X)


def _same(got, exp, rtol=1e-6):
    """Equal values and the same kind of result (sparse / ndarray / scalar)."""
    assert sp.issparse(got) == sp.issparse(exp), (type(got), type(exp))
    if sp.issparse(exp):
        assert got.shape == exp.shape
        got, exp = got.toarray(), exp.toarray()
    assert np.ndim(got) == np.ndim(exp), (np.shape(got), np.shape(exp))
    np.testing.assert_allclose(got, exp, rtol=rtol, atol=1e-12)


def _views(make_h5ad, fmt):
    """(lazy, in-memory) pairs: whole, a subset with repeats, and after normalize + log1p."""
    path, mem = make_h5ad(n_obs=157, n_vars=43, fmt=fmt, density=0.15, seed=11)
    a = oom.read(path)
    X = _mem(mem.X)
    rows = np.r_[5:60, 3, 3, 140:150]
    cols = np.r_[40:0:-3]
    out = [(a.X, X), (a.X[rows][:, cols], X[rows][:, cols])]
    b = oom.read(path)
    oom.pp.normalize_total(b, target_sum=1e4)
    oom.pp.log1p(b)
    Xd = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    s = Xd.sum(axis=1, keepdims=True)
    s[s == 0] = 1
    L = np.log1p(Xd / s * 1e4).astype(np.float32)
    out.append((b.X, sp.csr_matrix(L) if sp.issparse(X) else L))
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_reductions_equal_scipy(make_h5ad, fmt):
    for lazy, X in _views(make_h5ad, fmt):
        rtol = 1e-5 if X.dtype == np.float32 else 1e-6
        for axis in (None, 0, 1):
            for name in ("max", "min"):
                got, exp = getattr(lazy, name)(axis=axis), getattr(X, name)(axis=axis)
                assert type(got) is type(exp), (name, axis, type(got), type(exp))
                _same(got, exp, rtol)
            dense = X.toarray() if sp.issparse(X) else X
            _same(lazy.var(axis=axis), dense.var(axis=axis), rtol=1e-4)
            _same(lazy.var(axis=axis, ddof=1), dense.var(axis=axis, ddof=1), rtol=1e-4)
            cnz = X.count_nonzero(axis=axis) if sp.issparse(X) else np.count_nonzero(X, axis)
            np.testing.assert_array_equal(lazy.count_nonzero(axis=axis), cnz)
            if sp.issparse(X):
                got, exp = lazy.getnnz(axis=axis), X.getnnz(axis=axis)
                np.testing.assert_array_equal(got, exp)
                assert np.asarray(got).dtype.kind == np.asarray(exp).dtype.kind


@pytest.mark.parametrize("fmt", FORMATS)
def test_matmul_and_transpose_equal_scipy(make_h5ad, fmt):
    rng = np.random.default_rng(0)
    for lazy, X in _views(make_h5ad, fmt):
        n, m = X.shape
        v, w = rng.random(m), rng.random(n)
        M, N = rng.random((m, 3)), rng.random((2, n))
        _same(lazy @ v, X @ v)
        _same(lazy.dot(M), X @ M)
        _same(w @ lazy, w @ X)
        _same(N @ lazy, N @ X)
        T = lazy.T
        assert isinstance(T, TransposedArray) and T.shape == (m, n) and T.T is lazy
        XT = X.T
        _same(T @ w, XT @ w)
        _same(T @ N.T, XT @ N.T)
        _same(v @ T, v @ XT)
        for axis in (None, 0, 1):
            _same(T.sum(axis=axis), np.asarray(XT.sum(axis=axis)).ravel()
                  if axis is not None else XT.sum(), rtol=1e-5)
            _same(T.mean(axis=axis), np.asarray(XT.mean(axis=axis)).ravel()
                  if axis is not None else XT.mean(), rtol=1e-5)
            _same(T.max(axis=axis), XT.max(axis=axis))
        dense_t = XT.toarray() if sp.issparse(XT) else XT
        np.testing.assert_allclose(T.toarray(), dense_t, rtol=1e-6)
        # rows of the transpose are source columns, read by row blocks
        blocks = [blk for _, _, blk in T.chunked(7)]
        got = np.vstack([b.toarray() if sp.issparse(b) else b for b in blocks])
        np.testing.assert_allclose(got, dense_t, rtol=1e-6)
        np.testing.assert_allclose(np.asarray(T[3:9, ::2]), dense_t[3:9, ::2], rtol=1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_multiply_and_power_are_lazy_and_equal_scipy(make_h5ad, fmt, dtype):
    path, mem = make_h5ad(n_obs=90, n_vars=25, fmt=fmt, dtype=dtype, density=0.2, seed=4)
    a = oom.read(path)
    X = sp.csr_matrix(mem.X)  # scipy is the oracle for the values and dtypes
    rng = np.random.default_rng(1)
    col, row = rng.random(25), rng.random((90, 1))
    for other in (3, 2.5, col, col.reshape(1, -1), row, np.float32(0.5)):
        got, exp = a.X.multiply(other), X.multiply(other)
        assert isinstance(got, oom.BackedArray), type(got)  # lazy, not computed
        assert got.dtype == exp.dtype, (other, got.dtype, exp.dtype)
        np.testing.assert_allclose(got.toarray(), exp.toarray(), rtol=1e-6)
    for p in (2, 0.5, 3):
        got, exp = a.X.power(p), X.power(p)
        assert isinstance(got, oom.BackedArray) and got.dtype == exp.dtype, (p, got.dtype)
        np.testing.assert_allclose(got.toarray(), exp.toarray(), rtol=1e-6)
    # lazy ops compose with subsetting and with the transpose
    sub = a.X.multiply(col)[10:40, ::2]
    np.testing.assert_allclose(sub.toarray(), X.multiply(col).toarray()[10:40, ::2], rtol=1e-6)
    np.testing.assert_allclose(a.X.T.multiply(row.ravel()).toarray(),
                               X.T.multiply(row.ravel()).toarray(), rtol=1e-6)
    np.testing.assert_allclose(a.X.T.power(2).toarray(), X.T.power(2).toarray(), rtol=1e-6)
    assert a.X.multiply(2).sum() == pytest.approx(float(X.multiply(2).sum()), rel=1e-6)


def test_bad_operands_raise(small_file):
    a = oom.read(small_file)
    n, m = a.shape
    with pytest.raises(ValueError, match="mismatch"):
        a.X @ np.ones(m + 1)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        a.X.multiply(np.ones(m + 2))
    with pytest.raises(oom.InMemoryRequiredError, match="sparse or lazy"):
        a.X @ sp.random(m, 2, format="csr")
    with pytest.raises(oom.InMemoryRequiredError, match="multiply"):
        a.X.multiply(a.X)
    with pytest.raises(oom.InMemoryRequiredError, match="X.multiply"):
        a.X * 2
    with pytest.raises(TypeError):
        a.X.multiply("x")
    if a.X.is_sparse:
        with pytest.raises(NotImplementedError, match="zero power"):
            a.X.power(0)
    with pytest.raises(ValueError, match="zero-size"):
        a.X[:0].max()


def test_anndata_transpose_is_lazy(small_file):
    a = oom.read(small_file)
    a.layers["counts"] = a.X
    mem = a.to_memory()
    t, e = a.T, mem.T
    assert isinstance(t, oom.AnnDataOOM) and isinstance(t.X, TransposedArray)
    assert t.shape == e.shape
    assert t.obs_names.equals(e.obs_names) and t.var_names.equals(e.var_names)
    assert list(t.obsm) == list(e.obsm) and list(t.varm) == list(e.varm)
    dense = e.X.toarray() if sp.issparse(e.X) else e.X
    np.testing.assert_array_equal(t.X.toarray(), dense)
    np.testing.assert_array_equal(t.layers["counts"].toarray(), dense)
    sub = t[2:7, ::3]  # subsetting a transposed object stays lazy
    assert isinstance(sub.X, TransposedArray)
    np.testing.assert_array_equal(sub.X.toarray(), dense[2:7, ::3])
    np.testing.assert_array_equal(t.transpose().X.toarray(), np.asarray(a.X.toarray()))
    for write in (t.write_h5ad, t.write_zarr, lambda p: oom.write_zarr(t, p),
                  lambda p: oom.io.start_write_h5ad(t, p)):
        with pytest.raises(oom.InMemoryRequiredError, match="transposed"):
            write("never.h5ad")
    assert not os.path.exists("never.h5ad")


def test_numpy_refusals_and_empty_extremes(tmp_path):
    """What numpy/scipy refuse is refused; max/min of empty views as numpy and scipy."""
    import anndata as ad

    x = np.array([[2, 0, 1], [0, 4, -1]], dtype=np.int32)
    for fmt, mat in (("csr", sp.csr_matrix(x)), ("dense", x)):
        ad.AnnData(mat).write_h5ad(tmp_path / f"{fmt}.h5ad")
        X = oom.read(tmp_path / f"{fmt}.h5ad").X
        with pytest.raises(ValueError, match="negative integer powers"):
            x ** -1
        with pytest.raises(ValueError, match="negative integer powers"):
            X.power(-1)
        with np.errstate(divide="ignore"):
            want = (x.astype(float) ** -1.0 if fmt == "dense"
                    else sp.csr_matrix(x).power(-1.0).toarray())
            np.testing.assert_array_equal(X.power(-1.0).toarray(), want)
        with pytest.raises(NotImplementedError, match="astype\\(bool\\)"):
            X.astype(bool)
        for key in (1.0, [1.0, 0.0], (slice(None), np.array([0.0]))):
            with pytest.raises(IndexError):
                x[key]
            with pytest.raises(IndexError):
                X[key]
        with pytest.raises(IndexError, match="1-D"):  # numpy: a 3-D result
            X[[[1, 0]]]
        assert X[[]].shape == (0, 3)
        for sub, ref in ((X[:0], x[:0]), (X[:, :0], x[:, :0])):
            for axis in (None, 0, 1):
                for f in ("max", "min"):
                    try:
                        want = getattr(ref, f)(axis=axis)
                    except ValueError:
                        with pytest.raises(ValueError, match="zero-size array"):
                            getattr(sub, f)(axis=axis)
                        continue
                    got = getattr(sub, f)(axis=axis)
                    assert (got.toarray() if sp.issparse(got) else got).size == want.size == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_todense_and_tolist_equal_scipy_and_numpy(make_h5ad, fmt):
    for lazy, X in _views(make_h5ad, fmt):
        dense = X.toarray() if sp.issparse(X) else X
        got = lazy.todense()
        assert isinstance(got, np.matrix)
        np.testing.assert_allclose(np.asarray(got), dense, rtol=1e-6)
        np.testing.assert_allclose(np.array(lazy.tolist()), dense, rtol=1e-6)
        np.testing.assert_allclose(np.asarray(lazy.T.todense()), dense.T, rtol=1e-6)


def test_toarray_larger_than_ram_is_refused_before_reading(small_file, monkeypatch):
    a = oom.read(small_file)
    page = os.sysconf("SC_PAGE_SIZE")
    monkeypatch.setattr(os, "sysconf", lambda name: page if name == "SC_PAGE_SIZE" else 1)
    monkeypatch.setattr(type(a.X), "to_memory", lambda self: pytest.fail("read the matrix"))
    with pytest.raises(MemoryError, match="more than this machine's"):
        a.X.toarray()
