"""rank_genes_groups vs scanpy in memory: same names in the same order, same
scores, p-values and fold changes, same ``uns`` layout, same errors."""

from __future__ import annotations

import warnings

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import anndataoom as oom
from _pbmc_fixtures import pbmc_x_pca  # noqa: F401  (pytest fixture)
from anndataoom.tl import _rank_genes_groups as rgg

FIELDS = ("names", "scores", "pvals", "pvals_adj", "logfoldchanges")


@pytest.fixture(scope="module")
def pbmc(pbmc3k_path, pbmc_x_pca):  # noqa: F811
    """``(lazy, same)``: PBMC 3k with genes filtered, normalized and log1p'd by
    oom.pp, and an in-memory AnnData holding the same values; 7 k-means
    clusters of the PCA in ``obs['km']``."""
    from sklearn.cluster import KMeans

    lazy = oom.read(pbmc3k_path)
    km = KMeans(n_clusters=7, n_init=4, random_state=0).fit_predict(pbmc_x_pca[0][:, :20])
    oom.pp.filter_genes(lazy, min_cells=3)
    oom.pp.normalize_total(lazy, target_sum=1e4)
    oom.pp.log1p(lazy)
    lazy.obs["km"] = km.astype(str)
    lazy.obs["km"] = lazy.obs["km"].astype("category")
    same = ad.AnnData(X=lazy.X.to_memory(), obs=lazy.obs.copy(), var=lazy.var.copy(),
                      uns={"log1p": dict(lazy.uns["log1p"])})
    yield lazy, same
    lazy.close()


def assert_same(got: dict, want: dict, *, rtol: float = 1e-4, atol: float = 1e-5,
                near_ties: bool = False):
    """Equal tables; with ``near_ties``, names may swap only where scanpy's
    scores of the swapped genes are within the tolerance (t-test scores of
    mathematically tied genes differ in the last bits with the summation
    order, which in scanpy depends on its thread count)."""
    assert list(got) == list(want)
    assert got["params"] == want["params"]
    for k in FIELDS:
        assert got[k].dtype == want[k].dtype, k
    for g in want["names"].dtype.names:
        if near_ties:
            by_name = dict(zip(want["names"][g], want["scores"][g], strict=True))
            off = np.flatnonzero(got["names"][g] != want["names"][g])
            assert len(off) < 0.1 * len(want["names"][g]), g
            np.testing.assert_allclose([by_name[n] for n in got["names"][g][off]],
                                       want["scores"][g][off], rtol=rtol, atol=atol)
            want = {**want, **{k: _reorder(want, g, got["names"][g], k) for k in FIELDS}}
        np.testing.assert_array_equal(got["names"][g], want["names"][g], err_msg=g)
        np.testing.assert_allclose(got["scores"][g], want["scores"][g], rtol=rtol, atol=atol)
        np.testing.assert_allclose(got["logfoldchanges"][g], want["logfoldchanges"][g],
                                   rtol=rtol, atol=1e-4)
        for k in ("pvals", "pvals_adj"):
            np.testing.assert_allclose(got[k][g], want[k][g], rtol=1e-3, atol=1e-12, err_msg=k)
    for k in ("pts", "pts_rest"):
        if k in want:
            np.testing.assert_allclose(got[k].to_numpy(), want[k].to_numpy(), rtol=1e-12)
            assert (got[k].index == want[k].index).all()
            assert list(got[k].columns) == list(want[k].columns)


def _reorder(table: dict, g: str, names, field: str):
    """``table[field]`` with group ``g``'s entries in the order of ``names``."""
    pos = {n: i for i, n in enumerate(table["names"][g])}
    out = table[field].copy()
    out[g] = table[field][g][[pos[n] for n in names]]
    return out


def both(pair, groupby="km", **kw):
    lazy, mem = pair
    oom.tl.rank_genes_groups(lazy, groupby, **kw)
    sc.tl.rank_genes_groups(mem, groupby, **kw)
    key = kw.get("key_added") or "rank_genes_groups"
    # wilcoxon rank sums are exact: same values give the same floats
    assert_same(lazy.uns[key], mem.uns[key], near_ties=kw.get("method") != "wilcoxon")
    return lazy.uns[key]


@pytest.mark.parametrize("kw", [
    dict(method="wilcoxon"),
    dict(method="wilcoxon", tie_correct=True, reference="2"),
    dict(method="t-test", pts=True),
    dict(method="t-test_overestim_var", reference="4", corr_method="bonferroni"),
    dict(method=None, groups=["5", "1"], reference="0", n_genes=30, rankby_abs=True),
], ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_matches_scanpy(pbmc, kw):
    both(pbmc, **kw)


@pytest.mark.parametrize("method", ["wilcoxon", "t-test"])
def test_matches_scanpy_pipeline(pbmc3k_path, pbmc, method):
    """Against scanpy's own normalize/log1p: log1p differs from numpy's
    float32 log1p in the last bit for some values, so genes with nearly
    equal scores may swap places."""
    lazy, _ = pbmc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = ad.read_h5ad(pbmc3k_path)
    sc.pp.filter_genes(mem, min_cells=3)
    sc.pp.normalize_total(mem, target_sum=1e4)
    sc.pp.log1p(mem)
    mem.obs["km"] = lazy.obs["km"].to_numpy()
    oom.tl.rank_genes_groups(lazy, "km", method=method, pts=True)
    sc.tl.rank_genes_groups(mem, "km", method=method, pts=True)
    # one swapped rank moves a z-score by 1/σ ≈ 1e-4 here
    assert_same(lazy.uns["rank_genes_groups"], mem.uns["rank_genes_groups"], atol=5e-4,
                near_ties=True)


def test_wilcoxon_subset_pts_and_plots(pbmc):
    lazy, mem = pbmc
    res = both(pbmc, method="wilcoxon", tie_correct=True, groups=["3", "0", "6"], n_genes=40,
               pts=True, key_added="markers")
    assert res["names"].dtype.names == ("3", "0", "6")
    for g in ("3", "6"):
        df, want = (sc.get.rank_genes_groups_df(a, g, key="markers")
                    for a in (lazy, mem))
        assert (df["names"] == want["names"]).all()
        np.testing.assert_allclose(df["pct_nz_group"], want["pct_nz_group"])
    sc.pl.rank_genes_groups(lazy, key="markers", n_genes=5, show=False)
    plt.close("all")


def test_layer_mask_var_and_bands(pbmc, monkeypatch):
    lazy, mem = pbmc
    lazy.layers["lognorm"], mem.layers["lognorm"] = lazy.X, mem.X.copy()
    mask = np.arange(lazy.n_vars) % 3 != 0
    both(pbmc, method="wilcoxon", layer="lognorm", mask_var=mask, key_added="lay")
    # a tiny band budget: one pass per few genes, same sums
    monkeypatch.setattr(rgg, "BAND_BYTES", 12 * 200_000)
    oom.tl.rank_genes_groups(lazy, "km", method="wilcoxon", layer="lognorm", mask_var=mask,
                             key_added="bands")
    for k in FIELDS:
        np.testing.assert_array_equal(lazy.uns["bands"][k], lazy.uns["lay"][k])


def test_band_spill_to_a_missing_temp_dir_is_an_os_error(pbmc, monkeypatch, tmp_path):
    lazy, _ = pbmc
    monkeypatch.setattr(rgg, "BAND_BYTES", 12 * 200_000)
    monkeypatch.setenv("OOM_TMPDIR", str(tmp_path / "missing"))
    with pytest.raises(OSError, match="temp file"):
        oom.tl.rank_genes_groups(lazy, "km", method="wilcoxon", key_added="spill")
    assert "spill" not in lazy.uns


def test_use_raw(pbmc):
    lazy, mem = pbmc
    subsets = []
    for a in (lazy, mem):
        a.raw = a
        subsets.append(a[:, :500].copy())
        del a.raw
    both(tuple(subsets), method="wilcoxon", key_added="raw")
    assert subsets[0].uns["raw"]["names"].shape[0] == lazy.n_vars


def test_t_test_genes_constant_within_a_group_as_scipy(tmp_path):
    """A gene constant within a group: Σx²/n − mean² rounds to ±1e-17. The negative
    ones gave NaN, reported as score 0 and p-value 1 (scanpy does the same on the genes
    where its own rounding goes negative); the scores must be scipy's Welch test."""
    import anndata as ad
    from scipy import stats

    rng = np.random.default_rng(3)
    n_obs, n_vars, n_group = 400, 300, 13
    x = rng.normal(0.0, 1.0, (n_obs, n_vars)).astype(np.float32)
    x[:n_group] = rng.normal(0.5, 1.0, n_vars).astype(np.float32)  # each gene: one value
    path = tmp_path / "const.h5ad"
    obs = pd.DataFrame({"g": pd.Categorical(np.where(np.arange(n_obs) < n_group, "a", "b"))},
                       index=[f"c{i}" for i in range(n_obs)])
    ad.AnnData(x, obs=obs).write_h5ad(path)
    lazy = oom.read(path)
    oom.tl.rank_genes_groups(lazy, "g", method="t-test", groups=["a"])
    r = lazy.uns["rank_genes_groups"]
    genes = [int(n) for n in r["names"]["a"]]
    with warnings.catch_warnings():  # scipy warns that the group's values are identical
        warnings.simplefilter("ignore", RuntimeWarning)
        want = stats.ttest_ind(x[:n_group, genes], x[n_group:, genes], equal_var=False)
    np.testing.assert_allclose(r["scores"]["a"], want.statistic, rtol=1e-5)
    np.testing.assert_allclose(r["pvals"]["a"], want.pvalue, rtol=1e-4, atol=1e-12)


@pytest.mark.parametrize("reference", ["rest", "b"])
def test_wilcoxon_negative_values(tmp_path, reference):
    """Scaled data: zeros become negative values; ranks still as scipy's."""
    from anndataoom.testing import gen_h5ad

    path = tmp_path / "x.h5ad"
    gen_h5ad(path, n_obs=300, n_vars=60, density=0.3, seed=5)
    lazy = oom.read(path)
    oom.pp.log1p(lazy)
    oom.pp.scale(lazy, max_value=3)
    lazy.obs["g"] = np.array(list("abcd"))[np.arange(300) % 4]
    lazy.obs["g"] = lazy.obs["g"].astype("category")
    mem = ad.AnnData(X=lazy.X.to_memory(), obs=lazy.obs.copy(), var=lazy.var.copy())
    assert (mem.X < 0).any()
    for tie in (False, True):
        both((lazy, mem), "g", method="wilcoxon", reference=reference, tie_correct=tie, pts=True)
    lazy.close()


def test_in_memory_goes_to_scanpy(pbmc):
    _, mem = pbmc
    m = mem[:, :200].copy()
    oom.tl.rank_genes_groups(m, "km", method="wilcoxon", key_added="mine")
    sc.tl.rank_genes_groups(m, "km", method="wilcoxon", key_added="theirs")
    assert_same(m.uns["mine"], m.uns["theirs"], rtol=0)


@pytest.mark.parametrize(("kw", "err"), [
    (dict(groupby="nope"), KeyError),
    (dict(reference="99"), ValueError),
    (dict(method="nope"), ValueError),
    (dict(corr_method="nope"), ValueError),
    (dict(groups="0"), ValueError),
    (dict(use_raw=True), ValueError),
    (dict(layer="lognorm", use_raw=True), ValueError),
    (dict(groupby="single"), ValueError),
    # scanpy fails by accident here (an empty index, the .cat accessor); ours
    # are ValueErrors with a message that are also of scanpy's types
    (dict(groups=["0", "x"]), IndexError),
    (dict(groupby="number"), AttributeError),
    (dict(groups=["0"], reference="0"), AttributeError),
], ids=str)
def test_bad_input_errors_like_scanpy(pbmc, kw, err):
    for a in pbmc:
        a.obs["single"] = a.obs["km"].cat.add_categories("lonely")
        a.obs.loc[a.obs_names[0], "single"] = "lonely"
        a.obs["number"] = a.obs["km"].cat.codes.astype(int)
    kw = dict(groupby="km") | kw
    for f in (oom.tl.rank_genes_groups, sc.tl.rank_genes_groups):
        with pytest.raises(err):
            f(pbmc[0] if f is oom.tl.rank_genes_groups else pbmc[1], **kw)


def test_unknown_group_and_logreg(pbmc):
    lazy, _ = pbmc
    lazy.obs["number"] = lazy.obs["km"].cat.codes.astype(int)
    with pytest.raises(ValueError, match="not categories"):
        oom.tl.rank_genes_groups(lazy, "km", groups=["0", "x"])
    with pytest.raises(ValueError, match="must be categorical"):
        oom.tl.rank_genes_groups(lazy, "number")
    with pytest.raises(ValueError, match="only the reference '0'"):
        oom.tl.rank_genes_groups(lazy, "km", groups=["0"], reference="0")
    with pytest.raises(NotImplementedError, match="scanpy"):
        oom.tl.rank_genes_groups(lazy, "km", method="logreg")
