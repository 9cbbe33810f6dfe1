"""``oom.pp.combat`` against ``sc.pp.combat`` (dense, in memory) on the same data."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import anndataoom as oom

pytestmark = pytest.mark.filterwarnings("ignore:.*:RuntimeWarning")


def _close(ours, theirs, tol=1e-5):
    ours = ours.toarray() if hasattr(ours, "toarray") else np.asarray(ours)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol)


def test_pbmc3k_with_a_batch_column(pbmc3k_path):
    mem, lazy = ad.read_h5ad(pbmc3k_path), oom.read(pbmc3k_path)
    sc.pp.filter_genes(mem, min_cells=3)
    keep = np.asarray(mem.var_names[::6])  # ~2,300 genes: scanpy's dense copies stay small
    mem, lazy = mem[:, keep].copy(), lazy[:, keep]
    batch = np.random.default_rng(0).choice(["b1", "b2", "b3"], mem.n_obs)
    mem.obs["batch"] = lazy.obs["batch"] = batch
    sc.pp.normalize_total(mem, target_sum=1e4)
    sc.pp.log1p(mem)
    oom.pp.normalize_total(lazy, target_sum=1e4)
    oom.pp.log1p(lazy)
    sc.pp.combat(mem, "batch")
    assert oom.pp.combat(lazy, "batch") is None
    assert isinstance(lazy.X, oom.BackedArray) and lazy.X.transforms[-1] == "combat"
    _close(lazy.X, mem.X)
    lazy.close()


@pytest.fixture
def counts(make_h5ad):
    """Generated counts (two all-zero genes: zero pooled variance) with covariates."""
    path, _ = make_h5ad(n_obs=240, n_vars=60, fmt="csr", dtype="int32", density=0.3, seed=2,
                        empty_cols=[4, 17])
    mem, lazy = ad.read_h5ad(path), oom.read(path)
    for a in (mem, lazy):
        a.obs["depth"] = np.log1p(a.obs["n_counts_sim"].to_numpy())
    mem.X = mem.X.astype(np.float64)
    yield mem, lazy
    lazy.close()


# (A categorical covariate makes scanpy's design rank-deficient — its dummies
# sum to the batch dummies — so scanpy's own result is then meaningless.)
@pytest.mark.parametrize("covariates", [None, ["depth"], ["depth", "score"]])
def test_counts_and_covariates(counts, covariates):
    mem, lazy = counts
    theirs = sc.pp.combat(mem, "batch", covariates=covariates, inplace=False)
    ours = oom.pp.combat(lazy, "batch", covariates=covariates, inplace=False)
    assert isinstance(ours, oom.BackedArray)
    assert isinstance(lazy.X, oom.BackedArray) and not lazy.X.transforms  # X unchanged
    _close(ours, theirs)
    # rows and columns picked after the op carry their own batch and parameters
    rows, cols = np.array([5, 0, 200, 5]), np.array([17, 3, 59])
    _close(ours[rows][:, cols], theirs[rows][:, cols])


def test_rank_deficient_design_is_refused(counts):
    _, lazy = counts
    lazy.obs["grp"] = pd.Categorical(np.array(["g1", "g2"])[(np.arange(lazy.n_obs) // 7) % 2])
    with pytest.raises(ValueError, match=r"has (\d+) columns but rank (?!\1)\d+"):
        oom.pp.combat(lazy, "batch", covariates=["grp"], inplace=False)
    assert not lazy.X.transforms
    lazy.obs["g2"] = (lazy.obs["grp"] == "g2").astype(float)  # the advice: one indicator
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        oom.pp.combat(lazy, "batch", covariates=["g2"], inplace=False)


def test_in_memory_goes_to_scanpy(counts):
    mem, _ = counts
    expected = sc.pp.combat(mem.copy(), "batch", inplace=False)
    _close(oom.pp.combat(mem, "batch", inplace=False), expected)


def test_bad_input_is_refused_before_any_change(counts):
    _, lazy = counts
    before = lazy.X
    with pytest.raises(ValueError, match="Could not find the key"):
        oom.pp.combat(lazy, "nope")
    with pytest.raises(ValueError, match="Could not find the covariate"):
        oom.pp.combat(lazy, "batch", covariates=["nope"])
    with pytest.raises(ValueError, match="cannot overlap"):
        oom.pp.combat(lazy, "batch", covariates=["batch"])
    with pytest.raises(ValueError, match="unique"):
        oom.pp.combat(lazy, "batch", covariates=["depth", "depth"])
    lazy.obs["holes"] = lazy.obs["batch"].astype(object)
    lazy.obs.iloc[3, lazy.obs.columns.get_loc("holes")] = None
    with pytest.raises(ValueError, match="missing values"):
        oom.pp.combat(lazy, "holes")
    assert lazy.X is before
