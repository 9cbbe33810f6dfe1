"""filter_rank_genes_groups vs scanpy in memory: the same genes kept, with the
fractions and fold changes from ``uns`` or from one pass over X."""

from __future__ import annotations

import warnings

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import anndataoom as oom


@pytest.fixture(scope="module")
def pbmc(pbmc3k_path):
    """``(lazy, same)``: PBMC 3k normalized and log1p'd by oom.pp, and an in-memory
    AnnData with the same values; four groups by total expression in ``obs['g']``
    (so genes differ between them) and a second grouping ``h`` moving 300 cells."""
    lazy = oom.read(pbmc3k_path)
    oom.pp.filter_genes(lazy, min_cells=3)
    oom.pp.normalize_total(lazy, target_sum=1e4)
    oom.pp.log1p(lazy)
    x = lazy.X.to_memory()
    total = np.asarray(x.sum(axis=1)).ravel()
    g = pd.qcut(total, 4, labels=False).astype(str)
    h = g.copy()
    h[np.random.default_rng(0).choice(len(h), 300, replace=False)] = "0"
    lazy.obs["g"], lazy.obs["h"] = pd.Categorical(g), pd.Categorical(h)
    same = ad.AnnData(X=x, obs=lazy.obs.copy(), var=lazy.var.copy(),
                      uns={"log1p": dict(lazy.uns["log1p"])})
    yield lazy, same
    lazy.close()


def both(pbmc, rank: dict, **kw) -> pd.DataFrame:
    """Rank with ``rank`` and filter with ``kw`` in both; return the kept names."""
    lazy, mem = pbmc
    oom.tl.rank_genes_groups(lazy, "g", **rank)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.rank_genes_groups(mem, "g", **rank)
    return compare_filtered(pbmc, **kw)


def compare_filtered(pbmc, **kw) -> pd.DataFrame:
    lazy, mem = pbmc
    oom.tl.filter_rank_genes_groups(lazy, **kw)
    sc.tl.filter_rank_genes_groups(mem, **kw)
    key = kw.get("key_added", "rank_genes_groups_filtered")
    got, want = (pd.DataFrame(a.uns[key]["names"]) for a in (lazy, mem))
    pd.testing.assert_frame_equal(got, want)
    assert set(lazy.uns[key]) == set(mem.uns[key])
    kept = int(got.notna().to_numpy().sum())
    assert 0 < kept < got.size  # the thresholds cut: the comparison means something
    return got


@pytest.mark.parametrize("pts", [False, True], ids=["pass", "from-uns"])
@pytest.mark.parametrize("method", ["t-test", "wilcoxon"])
@pytest.mark.parametrize("kw", [
    {},
    dict(min_fold_change=0.2, min_in_group_fraction=0.1, max_out_group_fraction=0.9),
    dict(compare_abs=True, min_fold_change=0.1, key_added="abs"),
], ids=["defaults", "loose", "abs"])
def test_matches_scanpy(pbmc, pts, method, kw):
    both(pbmc, dict(method=method, pts=pts, n_genes=200), **kw)


def test_fold_changes_from_the_pass(pbmc):
    """Without stored fold changes, or for another grouping, the means come from X."""
    lazy, mem = pbmc
    both(pbmc, dict(n_genes=300, pts=True), min_fold_change=0.3)
    for a in (lazy, mem):
        del a.uns["rank_genes_groups"]["logfoldchanges"]
    compare_filtered(pbmc, min_fold_change=0.3, key_added="no_lfc")
    both(pbmc, dict(n_genes=300))
    compare_filtered(pbmc, groupby="h", min_fold_change=0.2, key_added="other_groups")


def test_use_raw(pbmc):
    lazy, mem = pbmc
    subsets = []
    for a in (lazy, mem):
        a.raw = a
        sub = a[:, :2000].copy()
        del a.raw
        subsets.append(sub)
    both(tuple(subsets), dict(n_genes=100, use_raw=True), min_fold_change=0.2)
    assert subsets[0].uns["rank_genes_groups"]["names"].shape == (100,)


def test_scanpys_own_is_refused_unless_uns_holds_the_fractions(pbmc):
    lazy, _ = pbmc
    oom.tl.rank_genes_groups(lazy, "g", n_genes=50, key_added="no_pts")
    with pytest.raises(oom.InMemoryRequiredError,
                       match=r"Use oom.tl.filter_rank_genes_groups\(adata\) instead"):
        sc.tl.filter_rank_genes_groups(lazy, key="no_pts", key_added="refused")
    assert "refused" not in lazy.uns
    assert isinstance(lazy.X, oom.BackedArray)
    # with pts, scanpy needs no X: its own function works and agrees with ours
    oom.tl.rank_genes_groups(lazy, "g", n_genes=50, pts=True, key_added="pts")
    sc.tl.filter_rank_genes_groups(lazy, key="pts", key_added="by_scanpy")
    oom.tl.filter_rank_genes_groups(lazy, key="pts", key_added="by_oom")
    pd.testing.assert_frame_equal(pd.DataFrame(lazy.uns["by_scanpy"]["names"]),
                                  pd.DataFrame(lazy.uns["by_oom"]["names"]))
    sc.pl.rank_genes_groups_dotplot(lazy, key="by_oom", dendrogram=False, show=False)
    plt.close("all")


def test_in_memory_goes_to_scanpy(pbmc):
    _, mem = pbmc
    sc.tl.rank_genes_groups(mem, "g", n_genes=20)
    oom.tl.filter_rank_genes_groups(mem, key_added="mem")
    assert "mem" in mem.uns


@pytest.mark.parametrize(("kw", "err", "match"), [
    (dict(key="nothing"), KeyError, "run oom.tl.rank_genes_groups first"),
    (dict(groupby="missing"), KeyError, "'missing' is not a column of adata.obs"),
    (dict(use_raw=True), ValueError, "adata.raw` is empty"),
])
def test_bad_input(pbmc, kw, err, match):
    lazy, _ = pbmc
    oom.tl.rank_genes_groups(lazy, "g", n_genes=20)
    before = dict(lazy.uns)
    with pytest.raises(err, match=match):
        oom.tl.filter_rank_genes_groups(lazy, **kw)
    assert dict(lazy.uns).keys() == before.keys()
