"""``oom.get.aggregate`` against ``sc.get.aggregate`` on the same data in memory."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import anndataoom as oom

FUNCS = ["sum", "mean", "var", "count_nonzero"]


def _assert_same(ours: ad.AnnData, theirs: ad.AnnData, rtol=1e-6):
    assert isinstance(ours, ad.AnnData) and not isinstance(ours, oom.AnnDataOOM)
    assert ours.shape == theirs.shape
    assert list(ours.obs_names) == list(theirs.obs_names)
    assert list(ours.var_names) == list(theirs.var_names)
    pd.testing.assert_frame_equal(ours.obs, theirs.obs)
    assert set(ours.layers) == set(theirs.layers)
    for k in theirs.layers:
        a, b = np.asarray(ours.layers[k]), np.asarray(theirs.layers[k])
        assert a.dtype == b.dtype, (k, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-6 * max(1.0, np.abs(b).max()),
                                   err_msg=k)


@pytest.fixture(scope="module")
def pbmc(pbmc3k_path):
    """PBMC 3k with two grouping columns (one with unused categories) and a gene grouping."""
    lazy, mem = oom.read(pbmc3k_path), ad.read_h5ad(pbmc3k_path)
    rng = np.random.default_rng(0)
    cats = ["c0", "c1", "c2", "c3", "unused"]
    group = pd.Categorical(rng.choice(cats[:4], lazy.n_obs), categories=cats)
    half = np.where(np.arange(lazy.n_obs) % 2 == 0, "even", "odd")
    genes = pd.Categorical(rng.choice(["g0", "g1", "g2"], lazy.n_vars))
    for a in (lazy, mem):
        a.obs["group"] = group
        a.obs["half"] = half
        a.var["block"] = genes
    yield lazy, mem
    lazy.close()


@pytest.mark.parametrize("by", ["group", ["group", "half"]])
def test_pbmc_obs_groups(pbmc, by):
    lazy, mem = pbmc
    _assert_same(oom.get.aggregate(lazy, by, FUNCS), sc.get.aggregate(mem, by, FUNCS))
    assert isinstance(lazy.X, oom.BackedArray)


def test_pbmc_var_groups_and_mask(pbmc):
    lazy, mem = pbmc
    _assert_same(oom.get.aggregate(lazy, "block", FUNCS, axis="var"),
                 sc.get.aggregate(mem, "block", FUNCS, axis="var"))
    mask = np.asarray(lazy.obs["half"] == "even")
    _assert_same(oom.get.aggregate(lazy, "group", FUNCS, mask=mask, dof=0),
                 sc.get.aggregate(mem, "group", FUNCS, mask=mask, dof=0))


@pytest.mark.parametrize(("fmt", "dtype"), [("csr", "float32"), ("dense", "int32"),
                                             ("csc", "float64"), ("csr", "int64")])
def test_generated_formats(make_h5ad, fmt, dtype):
    path, _ = make_h5ad(n_obs=300, n_vars=200, fmt=fmt, dtype=dtype, density=0.15, seed=11,
                        chunks=97, empty_cols=[3])
    lazy, mem = oom.read(path), ad.read_h5ad(path)
    _assert_same(oom.get.aggregate(lazy, "batch", FUNCS), sc.get.aggregate(mem, "batch", FUNCS))
    # a lazy transform in front: aggregated as read
    oom.pp.normalize_total(lazy, target_sum=1e4)
    oom.pp.log1p(lazy)
    sc.pp.normalize_total(mem, target_sum=1e4)
    sc.pp.log1p(mem)
    _assert_same(oom.get.aggregate(lazy, "batch", ["mean", "var"]),
                 sc.get.aggregate(mem, "batch", ["mean", "var"]), rtol=1e-5)
    lazy.close()


@pytest.fixture
def small(make_h5ad):
    path, _ = make_h5ad(n_obs=80, n_vars=30, density=0.3, seed=5)
    lazy, mem = oom.read(path), ad.read_h5ad(path)
    lazy.layers["counts"] = lazy.X
    mem.layers["counts"] = mem.X.copy()
    lazy.obsm["emb"] = mem.obsm["emb"] = np.arange(160, dtype=float).reshape(80, 2)
    yield lazy, mem
    lazy.close()


def test_layer_obsm_and_single_func(small):
    lazy, mem = small
    _assert_same(oom.get.aggregate(lazy, "batch", "sum", layer="counts"),
                 sc.get.aggregate(mem, "batch", "sum", layer="counts"))
    _assert_same(oom.get.aggregate(lazy, "batch", "mean", obsm="emb"),
                 sc.get.aggregate(mem, "batch", "mean", obsm="emb"))


def test_in_memory_input_goes_to_scanpy(small):
    _, mem = small
    _assert_same(oom.get.aggregate(mem, "batch", FUNCS), sc.get.aggregate(mem, "batch", FUNCS))


def test_bad_input(small):
    lazy, mem = small
    lazy.obs["with_nan"] = pd.Categorical(["a", None] * 40)
    mem.obs["with_nan"] = lazy.obs["with_nan"]
    with pytest.raises(ValueError):  # scanpy: ValueError too
        sc.get.aggregate(mem, "with_nan", "sum")
    with pytest.raises(ValueError, match="missing values"):
        oom.get.aggregate(lazy, "with_nan", "sum")
    with pytest.raises(ValueError, match="not one of"):
        oom.get.aggregate(lazy, "batch", "mode")
    with pytest.raises(TypeError, match="only provide one"):
        oom.get.aggregate(lazy, "batch", "sum", layer="counts", obsm="emb")
    with pytest.raises(oom.InMemoryRequiredError if hasattr(oom, "InMemoryRequiredError")
                       else TypeError, match="median"):
        oom.get.aggregate(lazy, "batch", "median")
    with pytest.raises(KeyError):
        oom.get.aggregate(lazy, "no_such_column", "sum")
    assert isinstance(lazy.X, oom.BackedArray)
