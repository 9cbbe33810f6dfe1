"""BackedArray vs the same matrix in memory (numpy / scipy as oracles)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import anndataoom as oom
from anndataoom import _oom
from anndataoom.testing import FORMATS, assert_x_equal, dense

DTYPES = ("float32", "float64", "int32", "int64")


def _open(path):
    return oom.BackedArray(_oom.open(str(path), "X"))


def _expected_sum(X, axis):
    """numpy/scipy oracle, flattened to 1-D like ours."""
    r = X.sum(axis=axis)
    return np.asarray(r).ravel() if axis is not None else r


def _expected_mean(X, axis):
    r = X.mean(axis=axis)
    return np.asarray(r).ravel() if axis is not None else r


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_attributes_sum_mean(make_h5ad, fmt, dtype):
    path, mem = make_h5ad(n_obs=73, n_vars=31, fmt=fmt, dtype=dtype, density=0.2)
    X = _open(path)
    assert X.shape == mem.X.shape
    assert X.ndim == 2
    assert X.dtype == np.dtype(dtype)
    assert X.format == ("dense" if fmt == "dense" else "csr")
    assert len(X) == 73
    expected_nnz = mem.X.nnz if sp.issparse(mem.X) else int(np.count_nonzero(mem.X))
    assert X.nnz == expected_nnz
    rtol = 1e-6 if dtype == "float32" else 1e-12
    for axis in (None, 0, 1, -1, -2):
        got, exp = X.sum(axis=axis), _expected_sum(mem.X, axis)
        assert np.asarray(got).dtype == np.asarray(exp).dtype, (axis, got, exp)
        if axis is not None:
            assert isinstance(got, np.ndarray) and got.ndim == 1
            assert got.shape == exp.shape
        np.testing.assert_allclose(got, exp, rtol=rtol)
        got, exp = X.mean(axis=axis), _expected_mean(mem.X, axis)
        assert np.asarray(got).dtype == np.asarray(exp).dtype, (axis, got, exp)
        np.testing.assert_allclose(got, exp, rtol=rtol)
    # axis=0 is per column (n_vars), axis=1 per row (n_obs)
    assert X.sum(axis=0).shape == (31,)
    assert X.mean(axis=1).shape == (73,)


def test_bad_axis(small_file):
    X = _open(small_file)
    with pytest.raises(ValueError):
        X.sum(axis=2)
    with pytest.raises(ValueError):
        X.mean(axis="rows")


def test_to_memory_and_array(small_file):
    X = _open(small_file)
    mem = ad.read_h5ad(small_file)
    m = X.to_memory()
    if X.format == "csr":
        assert isinstance(m, sp.csr_matrix)
        assert m.has_canonical_format
    else:
        assert isinstance(m, np.ndarray)
    assert_x_equal(m, mem.X)
    np.testing.assert_array_equal(np.asarray(X), dense(mem.X))
    np.testing.assert_array_equal(X.toarray(), dense(mem.X))
    assert np.asarray(X, dtype=np.float64).dtype == np.float64

@pytest.mark.parametrize("dtype", ["float32", "int32", "float64"])
def test_to_memory_of_many_blocks_equals_anndata(make_h5ad, fmt, dtype, monkeypatch):
    """Blocks of a few rows (every block boundary, selection and empty block): the
    block-by-block fill gives anndata's matrix exactly."""
    path, mem = make_h5ad(n_obs=97, n_vars=23, fmt=fmt, density=0.3, dtype=dtype, seed=4,
                          empty_rows=range(20, 45))
    real = oom.BackedArray.blocks
    monkeypatch.setattr(oom.BackedArray, "blocks", lambda self: real(self, 40))
    X = _open(path)
    rows = np.r_[0:10, 50:97:3]
    cols = [5, 0, 22, 7]
    for view, want in ((X, mem.X), (X[rows], mem.X[rows]), (X[rows][:, cols], mem.X[rows][:, cols]),
                       (X[60:60], mem.X[60:60])):
        assert len(view.blocks()) > 1 or view.shape[0] == 0
        got = view.to_memory()
        assert got.dtype == mem.X.dtype
        if X.format == "csr":
            assert isinstance(got, sp.csr_matrix) and got.has_canonical_format
            got.check_format(full_check=True)
        assert_x_equal(got, want)



@pytest.mark.parametrize("chunk_size", [1, 7, 60, 1000, None])
def test_chunked(small_file, chunk_size):
    X = _open(small_file)
    mem = dense(ad.read_h5ad(small_file).X)
    seen = []
    for start, end, block in X.chunked(chunk_size=chunk_size) if chunk_size else X.chunked():
        assert isinstance(block, sp.csr_matrix if X.format == "csr" else np.ndarray)
        assert block.shape == (end - start, X.shape[1])
        np.testing.assert_array_equal(dense(block), mem[start:end])
        seen.append((start, end))
    assert seen[0][0] == 0 and seen[-1][1] == X.shape[0]
    assert all(a[1] == b[0] for a, b in zip(seen, seen[1:], strict=False))
    if chunk_size:
        assert all(e - s == chunk_size for s, e in seen[:-1])


def test_chunked_bad_size(small_file):
    with pytest.raises(ValueError):
        list(_open(small_file).chunked(0))


def test_getitem_int_column_and_row(small_file):
    X = _open(small_file)
    mem = ad.read_h5ad(small_file).X
    col = X[:, 5]
    row = X[7, :]
    if X.format == "csr":
        # sparse source: as scipy (omicverse's get_matrix relies on (n_obs, 1) csr)
        assert isinstance(col, sp.csr_matrix) and col.shape == (X.shape[0], 1)
        assert isinstance(row, sp.csr_matrix) and row.shape == (1, X.shape[1])
        np.testing.assert_array_equal(col.toarray().ravel(), dense(mem)[:, 5])
        np.testing.assert_array_equal(row.toarray().ravel(), dense(mem)[7])
    else:
        np.testing.assert_array_equal(col, mem[:, 5])
        np.testing.assert_array_equal(row, mem[7, :])
    assert X[3, 4] == dense(mem)[3, 4]
    assert X[-1, -1] == dense(mem)[-1, -1]


@pytest.mark.parametrize(
    "key",
    [
        slice(None),
        slice(5, 20),
        slice(None, None, -3),
        (slice(2, 9), slice(None, None, 2)),
        np.array([5, 1, 1, -2]),
        [3, 0],
        (np.array([4, 4, 0]), np.array([9, -1, 0, 9])),
        (Ellipsis, [1, 2]),
        np.arange(60) % 3 == 0,
        (slice(None), np.arange(40) % 2 == 1),
    ],
)
def test_getitem_lazy(small_file, key):
    X = _open(small_file)
    full = dense(ad.read_h5ad(small_file).X)
    sub = X[key]
    assert isinstance(sub, oom.BackedArray)
    if isinstance(key, tuple):
        r, c = key
        r = slice(None) if r is Ellipsis else r
        exp = full[r][:, c]
    else:
        exp = full[key]
    np.testing.assert_array_equal(dense(sub), exp)
    # subsets compose
    np.testing.assert_array_equal(dense(sub[::-1]), exp[::-1])


def test_getitem_errors(small_file):
    X = _open(small_file)
    with pytest.raises(IndexError):
        X[60]
    with pytest.raises(IndexError):
        X[:, -41]
    with pytest.raises(IndexError):
        X[np.array([0, 61])]
    with pytest.raises(IndexError):
        X[np.ones(59, dtype=bool)]
    with pytest.raises(IndexError):
        X[1, 2, 3]


def test_zero_d_integer_array_indexes_as_its_integer(small_file):
    X = _open(small_file)
    mem = ad.read_h5ad(small_file).X
    for key in ((np.array(3),), (np.array(3), slice(None)), (slice(None), np.int64(2)),
                (np.array(-1), np.array(4))):
        got, want = X[key], mem[key]
        assert got.shape == want.shape, key
        np.testing.assert_array_equal(dense(got), dense(want))


def test_newaxis_gives_a_row_as_numpy_and_scipy_do(small_file):
    X = _open(small_file)
    mem = ad.read_h5ad(small_file).X
    for key in ((None, 3), (-2, None)):
        got, want = X[key], mem[key]
        assert got.shape == want.shape == (1, 40), key
        assert sp.issparse(got) == sp.issparse(want)
        np.testing.assert_array_equal(dense(got), dense(want))
    for key in (None, (None,), (slice(None), None), (None, slice(1, 3)), (None, 1, 2)):
        with pytest.raises(IndexError, match="would make a 3-D array"):
            X[key]


def test_assignment_is_refused_naming_any_lazy_matrix(small_file):
    """A layer's refusal must not speak of X only."""
    a = oom.read(small_file)
    a.layers["counts"] = a.X
    for m in (a.X, a.layers["counts"]):
        with pytest.raises(oom.InMemoryRequiredError, match=r"assigning into a lazy matrix \(X, a layer"):
            m[0, 0] = 5
    assert a.X[0, 0] == a.layers["counts"][0, 0]


def test_subset_keeps_class_and_transforms(small_file):
    m = _oom.open(str(small_file), "X")
    for cls in (oom.BackedArray, oom.TransformedBackedArray, oom.ScaledBackedArray):
        X = cls(m, transforms=("t1",))
        sub = X[1:5, [0, 2]]
        assert type(sub) is cls
        assert sub.transforms == ("t1",)
        assert sub.shape == (4, 2)
        assert "t1" in repr(sub)
    assert issubclass(oom.ScaledBackedArray, oom.TransformedBackedArray)
    assert issubclass(oom.TransformedBackedArray, oom.BackedArray)


def test_constructor_type_check():
    with pytest.raises(TypeError):
        oom.BackedArray(np.zeros((2, 2)))


def test_repr(small_file):
    X = _open(small_file)
    r = repr(X)
    assert "BackedArray" in r and "shape=(60, 40)" in r and small_file.name in r


def test_nnz_cached_and_subset(make_h5ad):
    path, mem = make_h5ad(n_obs=50, n_vars=20, density=0.3)
    X = _open(path)
    rows = np.array([3, 3, 10, 0])
    sub = X[rows]
    assert sub.nnz == mem.X[rows].nnz
    assert sub.nnz == sub.nnz
    assert X.nnz == mem.X.nnz


@pytest.mark.parametrize("compression", [None, "gzip", "lzf"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_compression_small_chunks(make_h5ad, fmt, compression):
    path, mem = make_h5ad(n_obs=150, n_vars=45, fmt=fmt, compression=compression, chunks=64,
                          density=0.25)
    X = _open(path)
    assert_x_equal(X.to_memory(), mem.X)
    np.testing.assert_allclose(X.sum(axis=0), _expected_sum(mem.X, 0), rtol=1e-6)
    np.testing.assert_allclose(X.sum(axis=1), _expected_sum(mem.X, 1), rtol=1e-6)
    idx = np.array([149, 0, 77, 77, 3])
    assert_x_equal(X[idx, ::-2], dense(mem.X)[idx][:, ::-2])


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_int64_indptr(make_h5ad, fmt):
    path, mem = make_h5ad(n_obs=80, n_vars=30, fmt=fmt, indptr_dtype="int64")
    X = _open(path)
    assert_x_equal(X.to_memory(), mem.X)
    assert X.nnz == mem.X.nnz


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_rows_and_cols(make_h5ad, fmt):
    path, mem = make_h5ad(n_obs=40, n_vars=25, fmt=fmt, empty_rows=(0, 5, 39),
                          empty_cols=(0, 24, 7), density=0.4)
    X = _open(path)
    assert_x_equal(X.to_memory(), mem.X)
    s0, s1 = X.sum(axis=0), X.sum(axis=1)
    assert s0[[0, 7, 24]].tolist() == [0, 0, 0]
    assert s1[[0, 5, 39]].tolist() == [0, 0, 0]
    np.testing.assert_allclose(s0, _expected_sum(mem.X, 0))
    np.testing.assert_allclose(X.mean(axis=1), _expected_mean(mem.X, 1), rtol=1e-6)
    assert_x_equal(X[[0, 5]], dense(mem.X)[[0, 5]])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("n_obs", [0, 1])
def test_zero_and_one_row(make_h5ad, fmt, n_obs):
    path, mem = make_h5ad(n_obs=n_obs, n_vars=12, fmt=fmt, density=0.5)
    X = _open(path)
    assert X.shape == (n_obs, 12)
    m = X.to_memory()
    assert m.shape == (n_obs, 12)
    assert_x_equal(m, mem.X)
    assert X.sum(axis=0).shape == (12,)
    assert X.sum(axis=1).shape == (n_obs,)
    np.testing.assert_allclose(X.sum(axis=0), _expected_sum(mem.X, 0))
    assert X.sum() == mem.X.sum()
    assert len(list(X.chunked(5))) == n_obs
    if n_obs == 0:
        assert np.isnan(X.mean())
        assert np.all(np.isnan(X.mean(axis=0)))


def test_pbmc3k(pbmc3k_path):
    X = _open(pbmc3k_path)
    mem = ad.read_h5ad(pbmc3k_path).X
    assert X.shape == (2700, 32738)
    assert X.nnz == mem.nnz
    np.testing.assert_allclose(X.sum(axis=0), _expected_sum(mem, 0), rtol=1e-6)
    np.testing.assert_allclose(X.sum(axis=1), _expected_sum(mem, 1), rtol=1e-6)
    # scipy accumulates float32 means in float32 (e.g. 2.000025 for an exact 2);
    # ours accumulate in float64, so compare with a float64 oracle
    exact = _expected_mean(mem.astype(np.float64), 0)
    np.testing.assert_allclose(X.mean(axis=0), exact, rtol=1e-6)
    assert X.mean(axis=0).dtype == np.float32
    np.testing.assert_allclose(X.sum(), mem.sum(), rtol=1e-6)
    assert_x_equal(X.to_memory(), mem)


def test_a_transform_after_astype_sees_the_new_type(tmp_path):
    path = tmp_path / "ints.h5ad"
    counts = np.random.default_rng(5).poisson(2.0, (40, 30)).astype(np.int32)
    ad.AnnData(counts).write_h5ad(path)
    a = oom.read(path)
    totals = counts.sum(axis=1)
    # normalize_total of float64 values divides in float64 (integers alone give float32)
    a.X = a.X.astype(np.float64)
    oom.pp.normalize_total(a, target_sum=1.0)
    assert a.X.dtype == np.float64
    np.testing.assert_array_equal(a.X.toarray(), counts / totals[:, None])
    # a cast to integers truncates before the next transform
    b = oom.read(path)
    b.X = b.X.multiply(0.5).astype(np.int32)
    oom.pp.log1p(b)
    np.testing.assert_allclose(b.X.toarray(), np.log1p((counts * 0.5).astype(np.int32)),
                               rtol=1e-6)
    a.close()
    b.close()


def test_casts_chain_and_wrap_as_numpy(tmp_path):
    path = tmp_path / "f.h5ad"
    x = np.array([[2.7, -1.5, 0.0], [300.0, 70000.0, -1.0]])
    ad.AnnData(sp.csr_matrix(x)).write_h5ad(path)
    X = oom.read(path).X
    # the first cast truncates even when another follows
    np.testing.assert_array_equal(X.astype(np.int32).astype(np.float64).toarray(),
                                  x.astype(np.int32).astype(np.float64))
    # integers to narrower integers keep the low bits
    ints = X.astype(np.int32)
    for dt in (np.int8, np.uint16, np.uint8):
        got = ints.astype(dt).toarray()
        assert got.dtype == dt
        np.testing.assert_array_equal(got, x.astype(np.int32).astype(dt))
    # a Python int that does not fit the integer result: numpy's OverflowError
    with pytest.raises(OverflowError):
        ints.astype(np.int8).multiply(1000)
    with pytest.raises(OverflowError):
        x.astype(np.int32).astype(np.int8) * np.int8(1) * 1000


def test_astype(small_file):
    X = _open(small_file)
    full = dense(ad.read_h5ad(small_file).X)
    Y = X.astype(np.float64)
    assert Y.dtype == np.float64 and X.dtype == np.float32
    assert type(Y) is type(X) and Y.format == X.format
    np.testing.assert_array_equal(Y.toarray(), full.astype(np.float64))
    np.testing.assert_array_equal(Y[::2, [1, 0]].toarray(), full.astype(np.float64)[::2][:, [1, 0]])
    assert X.astype("float32") is not X and X.astype(np.float32, copy=False) is X
    Z = X.astype(np.int64)
    assert Z.sum(axis=0).dtype == np.int64
    np.testing.assert_array_equal(Z.sum(axis=0), full.astype(np.int64).sum(axis=0))
