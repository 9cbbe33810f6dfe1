"""scanpy on an AnnDataOOM gives what it gives on the same data in memory.

Given the same ``obsm['X_pca']``, neighbors, UMAP, Leiden (and Louvain when
installed) give identical graphs, embeddings and labels; plots coloured by
genes read single columns lazily (never the whole X) and draw the same
values.  scanpy functions that rewrite X raise an error naming the
anndataoom function to use instead.
"""

from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import anndataoom as oom
from _pbmc_fixtures import *  # noqa: F403  (pytest fixtures pbmc_pair, pbmc_clustered)
from anndataoom import InMemoryRequiredError
from anndataoom._core._backed_array import BackedArray
from anndataoom._core._oom_guard import OOMMaterializeWarning

GENES = ["CD3E", "MS4A1", "LYZ", "NKG7"]


@pytest.fixture
def no_full_load(monkeypatch):
    """Fail if anything reads more than a few columns of a lazy matrix at once."""
    orig = BackedArray.to_memory

    def guarded(self):
        assert self.shape[1] <= 16, f"whole-matrix read of {self.shape}"
        return orig(self)

    monkeypatch.setattr(BackedArray, "to_memory", guarded)
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", str(1 << 20))


def _sparse_equal(a, b) -> None:
    a, b = a.tocsr(), b.tocsr()
    a.sort_indices()
    b.sort_indices()
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)


def test_is_anndata(pbmc_pair):
    import anndata

    lazy, _ = pbmc_pair
    assert isinstance(lazy, anndata.AnnData)
    assert isinstance(lazy.X, BackedArray)


def test_neighbors_same_graph(pbmc_clustered):
    lazy, mem = pbmc_clustered
    for key in ("connectivities", "distances"):
        _sparse_equal(lazy.obsp[key], mem.obsp[key])
    assert lazy.uns["neighbors"]["params"] == mem.uns["neighbors"]["params"]
    assert isinstance(lazy.X, BackedArray)


def test_umap_same_embedding(pbmc_clustered):
    lazy, mem = pbmc_clustered
    np.testing.assert_allclose(lazy.obsm["X_umap"], mem.obsm["X_umap"], rtol=1e-5, atol=1e-5)


def test_leiden_same_labels(pbmc_clustered):
    lazy, mem = pbmc_clustered
    assert lazy.obs["leiden"].nunique() >= 5
    pd.testing.assert_series_equal(lazy.obs["leiden"], mem.obs["leiden"])


def test_louvain_same_labels(pbmc_clustered):
    pytest.importorskip("louvain")
    lazy, mem = pbmc_clustered
    lazy, mem = lazy.copy(), mem.copy()
    for a in (lazy, mem):
        sc.tl.louvain(a, random_state=0)
    pd.testing.assert_series_equal(lazy.obs["louvain"], mem.obs["louvain"])


def test_obs_df_genes_lazy(pbmc_clustered, no_full_load):
    lazy, mem = pbmc_clustered
    got = sc.get.obs_df(lazy, keys=[*GENES, "leiden"])
    want = sc.get.obs_df(mem, keys=[*GENES, "leiden"])
    pd.testing.assert_frame_equal(got, want)
    np.testing.assert_array_equal(lazy.obs_vector("LYZ"), mem.obs_vector("LYZ"))


def _drawn_arrays(fig, *, y_only: bool = False) -> list[np.ndarray]:
    """Colour values and point positions of every collection (``y_only``: jittered x)."""
    out = []
    for ax in fig.axes:
        for c in ax.collections:
            arr = c.get_array()
            if arr is not None:
                out.append(np.asarray(arr))
            off = np.asarray(c.get_offsets())
            out.append(off[:, 1] if y_only and off.ndim == 2 else off)
    return out


@pytest.mark.parametrize("plot", ["umap", "pca"])
def test_embedding_plots_by_gene(pbmc_clustered, no_full_load, plot):
    lazy, mem = pbmc_clustered
    figs = []
    for a in (lazy, mem):
        fn = getattr(sc.pl, plot)
        fig = fn(a, color=["leiden", "LYZ", "MS4A1"], show=False, return_fig=True)
        figs.append(_drawn_arrays(fig))
        plt.close(fig)
    assert len(figs[0]) == len(figs[1]) > 0
    for x, y in zip(*figs, strict=True):
        np.testing.assert_array_equal(x, y)


def test_violin_by_gene(pbmc_clustered, no_full_load):
    lazy, mem = pbmc_clustered
    drawn = []
    for a in (lazy, mem):
        axes = sc.pl.violin(a, ["LYZ", "NKG7"], groupby="leiden", show=False, stripplot=True)
        fig = np.atleast_1d(axes)[0].figure
        drawn.append(_drawn_arrays(fig, y_only=True))
        plt.close(fig)
    assert len(drawn[0]) == len(drawn[1]) > 0
    for x, y in zip(*drawn, strict=True):
        np.testing.assert_array_equal(x, y)


def test_violin_obs_keys(pbmc_clustered):
    lazy, mem = pbmc_clustered
    lazy, mem = lazy.copy(), mem.copy()
    for a in (lazy, mem):
        a.obs["total_counts"] = np.ravel(a.X.sum(axis=1))
    np.testing.assert_allclose(lazy.obs["total_counts"], mem.obs["total_counts"], rtol=1e-6)
    axes = sc.pl.violin(lazy, "total_counts", show=False)
    plt.close(np.atleast_1d(axes)[0].figure)


@pytest.mark.parametrize("kind", ["dotplot", "matrixplot", "stacked_violin"])
def test_grouped_gene_plots(pbmc_clustered, no_full_load, kind):
    lazy, mem = pbmc_clustered
    plots = [getattr(sc.pl, kind)(a, GENES, groupby="leiden", show=False, return_fig=True)
             for a in (lazy, mem)]
    for attr in ("obs_tidy", "dot_color_df", "dot_size_df", "values_df"):
        if hasattr(plots[1], attr):
            pd.testing.assert_frame_equal(getattr(plots[0], attr), getattr(plots[1], attr))
    for p in plots:
        p.make_figure()
        plt.close("all")


def test_score_genes_and_subset_plots(pbmc_clustered):
    lazy, mem = pbmc_clustered
    lazy, mem = lazy.copy(), mem.copy()
    for a in (lazy, mem):
        sc.tl.score_genes(a, GENES, random_state=0)
    np.testing.assert_allclose(lazy.obs["score"], mem.obs["score"], rtol=1e-5, atol=1e-6)


def test_paga_and_embedding_density(pbmc_clustered):
    lazy, mem = pbmc_clustered
    lazy, mem = lazy.copy(), mem.copy()
    for a in (lazy, mem):
        sc.tl.paga(a, groups="leiden")
        sc.tl.embedding_density(a, basis="umap")
    np.testing.assert_allclose(lazy.uns["paga"]["connectivities"].toarray(),
                               mem.uns["paga"]["connectivities"].toarray())
    np.testing.assert_allclose(lazy.obs["umap_density"], mem.obs["umap_density"])


SCANPY_NEEDS_X = {
    "calculate_qc_metrics": (lambda a: sc.pp.calculate_qc_metrics(a), "pp.calculate_qc_metrics"),
    "filter_cells": (lambda a: sc.pp.filter_cells(a, min_genes=200), "pp.filter_cells"),
    "filter_genes": (lambda a: sc.pp.filter_genes(a, min_cells=3), "pp.filter_genes"),
    "normalize_total": (lambda a: sc.pp.normalize_total(a), "pp.normalize_total"),
    "log1p": (lambda a: sc.pp.log1p(a), "pp.log1p"),
    "highly_variable_genes": (lambda a: sc.pp.highly_variable_genes(a), "pp.highly_variable_genes"),
    "scale": (lambda a: sc.pp.scale(a), "pp.scale"),
    "pca": (lambda a: sc.pp.pca(a), "pp.pca"),
    "regress_out": (lambda a: sc.pp.regress_out(a, ["n"]), "pp.regress_out"),
    "rank_genes_groups": (lambda a: sc.tl.rank_genes_groups(a, "g"), "rank_genes_groups"),
    "neighbors_without_pca": (lambda a: _neighbors_without_pca(a), "pp.pca"),
}


def _neighbors_without_pca(a):
    a.obsm.clear()
    # scanpy says it falls back to a PCA of X, then calls pp.pca (which must refuse)
    with pytest.warns(UserWarning, match="dimensions of `.X`"):
        sc.pp.neighbors(a)


@pytest.mark.parametrize("name", list(SCANPY_NEEDS_X))
def test_scanpy_rewriting_x_names_alternative(make_h5ad, name):
    path, _ = make_h5ad(n_obs=120, n_vars=80, seed=5)
    a = oom.read(path)
    a.obs["g"] = pd.Categorical(np.arange(a.n_obs) % 3).astype(str)
    a.obs["n"] = np.arange(a.n_obs, dtype=float)
    fn, alt = SCANPY_NEEDS_X[name]
    with pytest.raises(InMemoryRequiredError, match="anndataoom") as e:
        fn(a)
    assert alt in str(e.value)
    assert "to_memory" in str(e.value)
    assert isinstance(a.X, BackedArray)  # never swapped for an in-memory copy
    assert isinstance(e.value, TypeError)


def test_numpy_array_protocol_small_and_large(make_h5ad, monkeypatch):
    path, mem = make_h5ad(n_obs=50, n_vars=30, seed=2)
    a = oom.read(path)
    np.testing.assert_array_equal(np.asarray(a.X), mem.X.toarray())
    np.testing.assert_array_equal(np.log1p(a.X[:5]), np.log1p(mem.X[:5].toarray()))
    assert a.X.sum(axis=1, keepdims=True).shape == (50, 1)
    np.testing.assert_allclose(np.sum(a.X, axis=0), np.ravel(mem.X.sum(axis=0)), rtol=1e-6)
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", "1000")
    with pytest.raises(InMemoryRequiredError, match="ANNDATAOOM_MAX_DENSE_BYTES"):
        np.asarray(a.X)
    np.asarray(a.X[:, :2])  # small results still work
    for op in (lambda x: x + 1, lambda x: x > 0, lambda x: x * 2):
        with pytest.raises(InMemoryRequiredError):
            op(a.X)
    with pytest.raises(InMemoryRequiredError, match="in-place"):
        np.log1p(a.X, out=a.X)


def test_oom_guard_materialises_with_warning(make_h5ad):
    path, mem = make_h5ad(n_obs=80, n_vars=60, seed=4)
    a = oom.read(path)

    @oom.oom_guard(result_keys_obs=["*"], result_keys_uns=["*"])
    def scanpy_qc(adata):
        sc.pp.calculate_qc_metrics(adata, percent_top=None, inplace=True)
        return "ok"

    with pytest.warns(OOMMaterializeWarning, match="into memory"):
        assert scanpy_qc(a) == "ok"
    sc.pp.calculate_qc_metrics(mem, percent_top=None, inplace=True)
    np.testing.assert_allclose(a.obs["total_counts"], mem.obs["total_counts"])
    assert isinstance(a.X, BackedArray)


def test_end_to_end_oom_pca_then_scanpy(pbmc3k_path):
    """oom.pp pipeline + oom.pp.pca, then scanpy neighbors/UMAP/Leiden, vs scanpy in memory."""
    import anndata as ad
    from sklearn.metrics import adjusted_rand_score

    if not hasattr(oom.pp, "pca"):
        pytest.skip("oom.pp.pca is not available")
    lazy = oom.read(pbmc3k_path)
    mem = ad.read_h5ad(pbmc3k_path)
    results = []
    for a, pp in ((lazy, oom.pp), (mem, sc.pp)):
        pp.filter_cells(a, min_genes=200)
        pp.filter_genes(a, min_cells=3)
        pp.normalize_total(a, target_sum=1e4)
        pp.log1p(a)
        pp.highly_variable_genes(a, n_top_genes=2000)
        a = a[:, a.var["highly_variable"].to_numpy()].copy()
        pp.scale(a, max_value=10)
        pp.pca(a, n_comps=30, svd_solver="arpack" if pp is sc.pp else None, random_state=0)
        sc.pp.neighbors(a, n_pcs=30, random_state=0)
        sc.tl.leiden(a, flavor="igraph", n_iterations=2, directed=False, random_state=0)
        results.append(a)
    lz, mm = results
    assert isinstance(lz, oom.AnnDataOOM) and isinstance(lz.X, BackedArray)
    assert list(lz.var_names) == list(mm.var_names)
    cos = np.abs(np.sum(lz.varm["PCs"] * mm.varm["PCs"], axis=0))
    assert cos[:20].min() > 0.999, cos
    np.testing.assert_allclose(lz.uns["pca"]["variance_ratio"], mm.uns["pca"]["variance_ratio"],
                               rtol=1e-3)
    assert adjusted_rand_score(lz.obs["leiden"], mm.obs["leiden"]) > 0.9


def test_plots_and_obs_df_from_lazy_raw(pbmc_clustered, no_full_load):
    lazy, mem = pbmc_clustered
    lazy, mem = lazy.copy(), mem.copy()
    lazy.raw = lazy  # a lazy snapshot: nothing is read
    mem.raw = mem
    lazy, mem = lazy[:, :100], mem[:, :100].copy()  # raw keeps every gene
    assert isinstance(lazy.raw.X, BackedArray)
    got = sc.get.obs_df(lazy, keys=GENES, use_raw=True)
    pd.testing.assert_frame_equal(got, sc.get.obs_df(mem, keys=GENES, use_raw=True))
    figs = []
    for a in (lazy, mem):
        fig = sc.pl.umap(a, color=GENES[:2], use_raw=True, show=False, return_fig=True)
        figs.append(_drawn_arrays(fig))
        plt.close(fig)
    for x, y in zip(*figs, strict=True):
        np.testing.assert_array_equal(x, y)
    plots = [sc.pl.dotplot(a, GENES, groupby="leiden", use_raw=True, show=False,
                           return_fig=True) for a in (lazy, mem)]
    pd.testing.assert_frame_equal(plots[0].dot_color_df, plots[1].dot_color_df)
    plt.close("all")


def test_paga_path_on_a_gene_reads_only_that_gene(pbmc_clustered, no_full_load):
    """scanpy's paga_path calls ``tolist`` on a gene's column (it failed on a lazy matrix)."""
    lazy, mem = pbmc_clustered
    drawn = []
    for a in (lazy.copy(), mem.copy()):
        sc.tl.paga(a, groups="leiden")
        a.uns["iroot"] = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.tl.diffmap(a)
            sc.tl.dpt(a)
            sc.pl.paga_path(a, nodes=["0", "1"], keys=["CD3E", "LYZ"], show=False)
        drawn.append([np.asarray(im.get_array()) for im in plt.gcf().axes[0].images])
        plt.close("all")
    assert len(drawn[0]) == len(drawn[1]) == 1
    np.testing.assert_array_equal(drawn[0][0], drawn[1][0])
