"""``oom.pp.downsample_counts``: scanpy's totals exactly, its distribution, and reproducible draws.

The draws cannot equal scanpy's value by value (its numba generator
reseeds every cell), so the tests check what scanpy guarantees: every
downsampled cell has exactly its target, the others are unchanged, no
count grows, ``total_counts`` is hit exactly, and on average each gene
keeps the share of counts it had.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp

import anndataoom as oom


def _assert_expected_counts(observed, expected):
    """Each gene's kept counts within 5 standard deviations (≈ √expected) of the expectation."""
    z = (observed - expected) / np.sqrt(np.maximum(expected, 1.0))
    assert np.abs(z).max() < 5, z


def _dense(x):
    m = x.to_memory() if hasattr(x, "to_memory") else x
    return m.toarray() if sp.issparse(m) else np.asarray(m)


@pytest.fixture
def counts(make_h5ad):
    path, mem = make_h5ad(n_obs=200, n_vars=50, dtype="int32", density=0.6, seed=8)
    lazy = oom.read(path)
    yield lazy, _dense(mem.X)
    lazy.close()


@pytest.mark.parametrize("replace", [False, True])
def test_counts_per_cell_like_scanpy(counts, replace):
    lazy, x = counts
    target = int(np.median(x.sum(1)))
    mem = ad.AnnData(sp.csr_matrix(x))
    sc.pp.downsample_counts(mem, counts_per_cell=target, replace=replace)
    theirs = _dense(mem.X)
    oom.pp.downsample_counts(lazy, counts_per_cell=target, replace=replace, random_state=3)
    assert isinstance(lazy.X, oom.BackedArray) and lazy.X.transforms == ("downsample_counts",)
    ours = _dense(lazy.X)
    assert ours.dtype == x.dtype
    big = x.sum(1) > target
    for out in (ours, theirs):  # the same guarantees as scanpy's own result
        np.testing.assert_array_equal(out.sum(1)[big], target)
        np.testing.assert_array_equal(out[~big], x[~big])
        if not replace:
            assert (out <= x).all()
    # no explicit zeros left in sparse rows (scanpy's eliminate_zeros)
    block = lazy.X.to_memory()
    assert (block.data != 0).all()


@pytest.mark.parametrize("kw", [dict(counts_per_cell=60), dict(counts_per_cell=60, replace=True),
                                dict(total_counts=3000)])
def test_gene_subsets_slice_the_downsampled_matrix(counts, kw, tmp_path):
    """A row's draws see all its genes: selecting genes afterwards must not redraw them."""
    lazy, _ = counts
    oom.pp.downsample_counts(lazy, random_state=4, **kw)
    full = _dense(lazy.X)
    cols = np.array([40, 3, 3, 17, 0, 49])
    rows = np.array([150, 2, 2, 99])
    np.testing.assert_array_equal(_dense(lazy[:, :20].X), full[:, :20])
    np.testing.assert_array_equal(_dense(lazy.X[:, cols]), full[:, cols])
    np.testing.assert_array_equal(_dense(lazy[rows, cols].X), full[np.ix_(rows, cols)])
    np.testing.assert_array_equal(_dense(lazy[rows][:, cols].X), full[np.ix_(rows, cols)])
    sub = lazy[:, cols]
    with pytest.warns(UserWarning, match="zero counts"):  # cells without these genes
        oom.pp.normalize_total(sub, target_sum=10)  # ops on top of the selection still apply
    want = full[:, cols] / np.maximum(full[:, cols].sum(1, keepdims=True), 1) * 10
    np.testing.assert_allclose(_dense(sub.X), want, rtol=1e-6)
    lazy[:, 5:30].write_h5ad(tmp_path / "s.h5ad")
    np.testing.assert_array_equal(_dense(ad.read_h5ad(tmp_path / "s.h5ad").X), full[:, 5:30])
    kept = full.astype(bool).sum(0) >= 150
    oom.pp.filter_genes(lazy, min_cells=150)
    np.testing.assert_array_equal(_dense(lazy.X), full[:, kept])


def test_distribution_and_determinism(counts):
    lazy, x = counts
    copy1 = oom.pp.downsample_counts(lazy, counts_per_cell=20, random_state=7, copy=True)
    copy2 = oom.pp.downsample_counts(lazy, counts_per_cell=20, random_state=7, copy=True)
    other = oom.pp.downsample_counts(lazy, counts_per_cell=20, random_state=8, copy=True)
    a, b, c = _dense(copy1.X), _dense(copy2.X), _dense(other.X)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    # the same rows read in another order/subset give the same draws
    rows = np.array([150, 3, 77, 3])
    np.testing.assert_array_equal(_dense(copy1.X[rows]), a[rows])
    # each cell keeps a uniform sample of its counts: expected a_ij = 20 * x_ij / total_i
    total = x.sum(1, keepdims=True)
    expected = np.where(total > 20, 20 * x / np.maximum(total, 1), x).sum(0)
    _assert_expected_counts(a.sum(0), expected)


@pytest.mark.parametrize("replace", [False, True])
def test_total_counts_is_exact(counts, replace):
    lazy, x = counts
    total = int(x.sum()) // 3
    oom.pp.downsample_counts(lazy, total_counts=total, replace=replace, random_state=0)
    ours = _dense(lazy.X)
    assert ours.sum() == total
    if not replace:
        assert (ours <= x).all()
    _assert_expected_counts(ours.sum(0), x.sum(0) / 3)
    # more than the matrix holds: unchanged, as scanpy
    lazy2 = oom.read(lazy.X.path)
    oom.pp.downsample_counts(lazy2, total_counts=int(x.sum()) + 1)
    assert not lazy2.X.transforms
    lazy2.close()


def test_bad_input(counts, make_h5ad):
    lazy, _ = counts
    with pytest.raises(ValueError, match="exactly one"):
        oom.pp.downsample_counts(lazy)
    with pytest.raises(ValueError, match="exactly one"):
        oom.pp.downsample_counts(lazy, counts_per_cell=5, total_counts=5)
    with pytest.raises(ValueError, match="length"):
        oom.pp.downsample_counts(lazy, counts_per_cell=[5, 6])
    with pytest.raises(ValueError, match="non-negative"):
        oom.pp.downsample_counts(lazy, counts_per_cell=-1)
    assert not lazy.X.transforms
    # non-integer values: refused when read, with a ValueError (not a panic)
    oom.pp.normalize_total(lazy, target_sum=1.0)
    oom.pp.downsample_counts(lazy, counts_per_cell=1)
    with pytest.raises(ValueError, match="non-negative integer"):
        lazy.X.to_memory()
