"""The anndataoom 0.1.8 names omicverse 2.3.2 calls, against in-memory oracles.

``chunked_*`` and ``CenteredSparseArray`` versus numpy/scanpy computations
of the same quantities, on generated files and PBMC 3k; keys and dtypes as
in ``shared/omicverse-surface.md``.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

import anndataoom as oom
from anndataoom.testing import gen_h5ad

pytestmark = pytest.mark.filterwarnings("ignore")

SEED_NAMES = [
    "chunked_qc_metrics", "chunked_gene_group_pct", "chunked_identify_robust_genes",
    "chunked_normalize_total", "chunked_log1p", "chunked_mean_var",
    "chunked_highly_variable_genes_pearson", "chunked_scale", "chunked_pca",
    "chunked_highly_variable_genes_dispersion", "chunked_highly_variable_features_pegasus",
    "chunked_normalize_pearson_residuals", "chunked_regress", "chunked_scrublet_prepare",
    "CenteredSparseArray",
]


def dense(x) -> np.ndarray:
    if hasattr(x, "to_memory"):
        x = x.to_memory()
    if sp.issparse(x):
        x = x.toarray()
    return np.asarray(x)


def abs_cos(a, b) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=0)
    b = b / np.linalg.norm(b, axis=0)
    return np.abs((a * b).sum(axis=0))


@pytest.fixture(params=["csr", "csc", "dense"])
def gen(request, tmp_path):
    """(path, in-memory AnnData) of a 300 × 500 counts file with empty rows/columns."""
    path = tmp_path / f"g_{request.param}.h5ad"
    mem = gen_h5ad(path, n_obs=300, n_vars=500, fmt=request.param, density=0.12, seed=5,
                   empty_rows=(3, 17), empty_cols=(0, 9, 250))
    return path, mem


@pytest.fixture(scope="module")
def pbmc_mem(pbmc3k_path):
    return ad.read_h5ad(pbmc3k_path)


@pytest.fixture
def pbmc(pbmc3k_path):
    a = oom.read(pbmc3k_path)
    yield a
    a.close()


def _filtered(a, mem, min_cells=3):
    """Genes seen in >= min_cells cells, lazily and in memory."""
    keep = np.asarray((mem.X > 0).sum(axis=0)).ravel() >= min_cells
    a._inplace_subset_var(keep)
    return a, mem[:, keep].copy()


def _lognorm(a, mem, target=1e4):
    oom.chunked_normalize_total(a, target_sum=target)
    oom.chunked_log1p(a)
    sc.pp.normalize_total(mem, target_sum=target)
    sc.pp.log1p(mem)


# -- import-time contract ------------------------------------------------------------------


def test_import_contract():
    from anndataoom import (  # noqa: F401 - the exact import omicverse's _oom_compat runs
        AnnDataOOM,
        BackedArray,
        BackedLayers,
        ScaledBackedArray,
        TransformedBackedArray,
        is_oom,
        oom_guard,
    )

    for name in SEED_NAMES:
        assert name in oom.__all__, name
        assert callable(getattr(oom, name)), name
    assert issubclass(ScaledBackedArray, TransformedBackedArray)
    assert issubclass(TransformedBackedArray, BackedArray)
    assert not is_oom(ad.AnnData(np.zeros((2, 2))))


# -- QC ------------------------------------------------------------------------------------


def test_qc_metrics(gen):
    path, mem = gen
    a = oom.read(path)
    assert oom.chunked_qc_metrics(a) is None
    X = sp.csr_matrix(mem.X)
    np.testing.assert_array_equal(a.obs["nUMIs"], np.asarray(X.sum(axis=1)).ravel())
    np.testing.assert_array_equal(a.obs["detected_genes"], (X != 0).sum(axis=1).A1)
    np.testing.assert_array_equal(a.var["n_cells"], (X != 0).sum(axis=0).A1)
    assert a.obs["nUMIs"].dtype == np.float64
    assert a.obs["detected_genes"].dtype == np.int64
    assert a.var["n_cells"].dtype == np.int64


def test_gene_group_pct(gen):
    path, mem = gen
    a = oom.read(path)
    mask = a.var["mt"].to_numpy() | (np.arange(a.n_vars) % 7 == 0)
    frac = oom.chunked_gene_group_pct(a, mask)
    X = sp.csr_matrix(mem.X).astype(np.float64)
    total = np.asarray(X.sum(axis=1)).ravel()
    expected = np.asarray(X[:, mask].sum(axis=1)).ravel() / np.where(total == 0, 1, total)
    assert frac.dtype == np.float64 and frac.shape == (a.n_obs,)
    np.testing.assert_allclose(frac, expected, rtol=1e-12)
    assert frac[3] == 0 and frac[17] == 0  # empty cells: fraction 0, not NaN
    # a pandas bool Series works as well (omicverse passes .values)
    np.testing.assert_array_equal(oom.chunked_gene_group_pct(a, pd.Series(mask)), frac)


def test_identify_robust_genes(gen):
    path, mem = gen
    a = oom.read(path)
    n_cells = (sp.csr_matrix(mem.X) != 0).sum(axis=0).A1
    oom.chunked_identify_robust_genes(a, percent_cells=5)
    keep = n_cells > 0
    assert list(a.var_names) == list(mem.var_names[keep])
    assert a.X.shape == (mem.n_obs, keep.sum())
    np.testing.assert_array_equal(a.var["n_cells"], n_cells[keep])
    np.testing.assert_allclose(a.var["percent_cells"], n_cells[keep] / mem.n_obs * 100)
    assert a.var["robust"].dtype == bool
    np.testing.assert_array_equal(a.var["robust"], n_cells[keep] / mem.n_obs * 100 >= 5)
    np.testing.assert_array_equal(a.var["highly_variable_features"], a.var["robust"])


# -- normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize("exclude", [False, True])
def test_normalize_total_log1p(gen, exclude):
    path, mem = gen
    a = oom.read(path)
    x0 = a.X
    oom.chunked_normalize_total(a, target_sum=1e4, exclude_highly_expressed=exclude,
                                max_fraction=0.05)
    assert a.layers["counts"] is x0  # a lazy reference, not a copy
    X = sp.csr_matrix(mem.X).astype(np.float64)
    pre = a.uns["_pearson_precompute"]
    assert set(pre) == {"sums_cells", "sums_genes", "sq_sums_genes", "sum_total", "n_obs",
                        "n_vars"}
    np.testing.assert_allclose(pre["sums_cells"], X.sum(axis=1).A1)
    np.testing.assert_allclose(pre["sums_genes"], X.sum(axis=0).A1)
    np.testing.assert_allclose(pre["sq_sums_genes"], X.multiply(X).sum(axis=0).A1)
    assert pre["n_obs"] == mem.n_obs and pre["n_vars"] == mem.n_vars

    ref = mem.copy()
    sc.pp.normalize_total(ref, target_sum=1e4, exclude_highly_expressed=exclude,
                          max_fraction=0.05, key_added="nf")
    nf = ref.obs["nf"].to_numpy()  # scanpy stores total / target_sum
    np.testing.assert_allclose(a.obs["_norm_factor"], np.where(nf == 0, 1, nf), rtol=1e-6)
    assert isinstance(a.X, oom.TransformedBackedArray) and a.X.dtype == np.float32
    np.testing.assert_allclose(dense(a.X), dense(ref.X), rtol=1e-6)
    np.testing.assert_array_equal(dense(a.layers["counts"]), dense(mem.X))

    oom.chunked_log1p(a)
    assert "log1p" not in a.uns  # 0.1.8 leaves uns['log1p'] to the caller
    np.testing.assert_allclose(dense(a.X), np.log1p(dense(ref.X)), rtol=1e-6)


def test_normalize_total_median_target(pbmc, pbmc_mem):
    oom.chunked_normalize_total(pbmc)
    totals = np.asarray(pbmc_mem.X.sum(axis=1)).ravel()
    target = np.median(totals[totals > 0])
    np.testing.assert_allclose(pbmc.obs["_norm_factor"], totals / target, rtol=1e-6)


def test_mean_var(gen):
    path, mem = gen
    a = oom.read(path)
    mean, var = oom.chunked_mean_var(a)
    X = dense(mem.X).astype(np.float64)
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, X.var(axis=0, ddof=1), rtol=1e-9, atol=1e-12)


def test_normalize_pearson_residuals(pbmc, pbmc_mem):
    a, mem = _filtered(pbmc, pbmc_mem)
    assert oom.chunked_normalize_pearson_residuals(a, theta=50) is None
    sc.experimental.pp.normalize_pearson_residuals(mem, theta=50)
    assert a.X.dtype == mem.X.dtype == np.float64
    assert a.uns["pearson_residuals_normalization"]["clip"] == np.sqrt(a.n_obs)
    cols = np.arange(0, a.n_vars, 37)
    # scanpy sums and divides in float32; ours in float64, rounded once
    np.testing.assert_allclose(dense(a.X[:, cols]), mem.X[:, cols], rtol=1e-5, atol=1e-5)
    # a subset of the lazy residuals is the subset of the residuals
    np.testing.assert_allclose(dense(a[10:20, [5, 1]].X), mem.X[10:20][:, [5, 1]], rtol=1e-5,
                               atol=1e-5)


def test_normalize_pearson_residuals_layer_not_inplace(gen):
    path, mem = gen
    a = oom.read(path)
    a.layers["counts"] = a.X
    out = oom.chunked_normalize_pearson_residuals(a, layer="counts", clip=2.0, inplace=False)
    assert set(out) == {"X", "theta", "clip", "computed_on"} and out["computed_on"] == "counts"
    assert not a.X.transforms  # nothing replaced
    X = dense(mem.X).astype(np.float64)
    mu = np.outer(X.sum(1), X.sum(0)) / X.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = np.clip((X - mu) / np.sqrt(mu + mu**2 / 100), -2, 2)
    assert out["X"].dtype == np.float64  # scanpy's result type for any counts
    np.testing.assert_allclose(dense(out["X"]), ref, rtol=1e-6, atol=1e-6, equal_nan=True)
    with pytest.raises(ValueError, match="theta"):
        oom.chunked_normalize_pearson_residuals(a, theta=0)


# -- highly variable genes -------------------------------------------------------------------

PEARSON_COLS = ["means", "variances", "residual_variances", "highly_variable_rank",
                "highly_variable", "highly_variable_nbatches", "highly_variable_intersection"]


def test_hvg_pearson_vs_scanpy(pbmc, pbmc_mem):
    a, mem = _filtered(pbmc, pbmc_mem)
    oom.chunked_highly_variable_genes_pearson(a, n_top_genes=2000)
    sc.experimental.pp.highly_variable_genes(mem, flavor="pearson_residuals", n_top_genes=2000)
    for c in PEARSON_COLS:
        assert c in a.var, c
    assert a.var["highly_variable"].sum() == 2000
    np.testing.assert_array_equal(a.var["highly_variable"], mem.var["highly_variable"])
    np.testing.assert_allclose(a.var["residual_variances"], mem.var["residual_variances"],
                               rtol=1e-6)
    np.testing.assert_allclose(a.var["means"], mem.var["means"], rtol=1e-9)
    n = a.n_obs  # 0.1.8: population variance, 1-based rank over every gene
    np.testing.assert_allclose(a.var["variances"], mem.var["variances"] * (n - 1) / n, rtol=1e-7)
    np.testing.assert_array_equal(
        a.var["highly_variable_rank"], a.var["residual_variances"].rank(ascending=False))
    assert (a.var["highly_variable_nbatches"] == 1).all()
    np.testing.assert_array_equal(a.var["highly_variable_intersection"],
                                  a.var["highly_variable"])


def test_hvg_pearson_uses_precompute(pbmc, pbmc_mem):
    a, _ = _filtered(pbmc, pbmc_mem)
    b = a.copy()
    oom.chunked_normalize_total(a, target_sum=5e5)
    oom.chunked_log1p(a)
    oom.chunked_highly_variable_genes_pearson(a, n_top_genes=500, layer="counts")
    oom.chunked_highly_variable_genes_pearson(b, n_top_genes=500, precomputed=None)
    for c in PEARSON_COLS:
        np.testing.assert_allclose(a.var[c].to_numpy(dtype=float), b.var[c].to_numpy(dtype=float),
                                   rtol=1e-10)
    # a precompute of another shape is refused when passed explicitly
    with pytest.raises(ValueError, match="Stale"):
        oom.chunked_highly_variable_genes_pearson(
            a[:100], n_top_genes=10, layer="counts", precomputed=a.uns["_pearson_precompute"])


def test_hvg_pearson_batches(tmp_path):
    path = tmp_path / "b.h5ad"
    mem = gen_h5ad(path, n_obs=400, n_vars=300, density=0.3, seed=2)
    a = oom.read(path)
    batches = np.repeat(["a", "b"], 200)  # equal sizes: the same clip in 0.1.8 and scanpy
    a.obs["batch"] = batches
    mem.obs["batch"] = batches
    oom.chunked_highly_variable_genes_pearson(a, n_top_genes=50, batch_key="batch")
    sc.experimental.pp.highly_variable_genes(mem, flavor="pearson_residuals", n_top_genes=50,
                                             batch_key="batch")
    np.testing.assert_array_equal(a.var["highly_variable"], mem.var["highly_variable"])
    np.testing.assert_array_equal(a.var["highly_variable_nbatches"],
                                  mem.var["highly_variable_nbatches"])
    np.testing.assert_array_equal(a.var["highly_variable_intersection"],
                                  mem.var["highly_variable_intersection"])
    np.testing.assert_allclose(a.var["highly_variable_rank"], mem.var["highly_variable_rank"])


@pytest.mark.parametrize("flavor", ["seurat", "cell_ranger"])
@pytest.mark.parametrize("n_top", [None, 1000])
def test_hvg_dispersion(pbmc, pbmc_mem, flavor, n_top):
    a, mem = _filtered(pbmc, pbmc_mem)
    _lognorm(a, mem)
    oom.chunked_highly_variable_genes_dispersion(a, flavor=flavor, n_top_genes=n_top)
    sc.pp.highly_variable_genes(mem, flavor=flavor, n_top_genes=n_top)
    np.testing.assert_array_equal(a.var["highly_variable"], mem.var["highly_variable"])
    np.testing.assert_array_equal(a.var["highly_variable_features"], a.var["highly_variable"])
    for c in ("means", "dispersions", "dispersions_norm"):
        np.testing.assert_allclose(a.var[c], mem.var[c], rtol=1e-4, atol=1e-6)


def test_hvf_pegasus(pbmc, pbmc_mem):
    a, mem = _filtered(pbmc, pbmc_mem)
    _lognorm(a, mem)
    with pytest.raises(ValueError, match="robust"):
        oom.chunked_highly_variable_features_pegasus(a)
    oom.chunked_identify_robust_genes(a, percent_cells=0.05)
    oom.chunked_highly_variable_features_pegasus(a, n_top=1500, span=0.3)
    X = dense(mem.X).astype(np.float64)
    np.testing.assert_allclose(a.var["mean"], X.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(a.var["var"], X.var(axis=0, ddof=1), rtol=1e-5, atol=1e-10)
    hvf = a.var["highly_variable_features"].to_numpy()
    robust = a.var["robust"].to_numpy()
    assert hvf.dtype == bool and hvf.sum() == 1500
    assert not (hvf & ~robust).any()
    assert (a.var["hvf_rank"].to_numpy()[~robust] == -1).all()
    assert (a.var["hvf_loess"].to_numpy()[~robust] == 0).all()
    # the selected genes have the smallest rank sums
    ranks = a.var["hvf_rank"].to_numpy()[robust]
    assert ranks[hvf[robust]].max() <= np.sort(ranks)[1499]
    # and a clear excess of variance over the fitted trend
    excess = (a.var["var"] - a.var["hvf_loess"]).to_numpy()
    assert np.median(excess[hvf]) > np.median(excess[robust & ~hvf])


# -- scale and PCA ----------------------------------------------------------------------------


@pytest.fixture
def pbmc_hvg(pbmc, pbmc_mem):
    """PBMC log-normalised, 2000 seurat HVGs flagged (not subset)."""
    a, mem = _filtered(pbmc, pbmc_mem)
    _lognorm(a, mem)
    sc.pp.highly_variable_genes(mem, n_top_genes=2000)
    a.var["highly_variable"] = mem.var["highly_variable"].to_numpy()
    return a, mem


def test_scale(pbmc_hvg):
    a, mem = pbmc_hvg
    x_before = a.X
    oom.chunked_scale(a, max_value=10)
    assert a.X is x_before
    s = a.layers["scaled"]
    assert isinstance(s, oom.ScaledBackedArray) and s.dtype == np.float32
    cols = np.flatnonzero(mem.var["highly_variable"].to_numpy())[:300]
    ref = sc.pp.scale(mem[:, cols].X.toarray(), max_value=10, copy=True)
    # statistics over all cells of each gene, so a column subset is exact
    np.testing.assert_allclose(dense(s[:, cols]), ref, rtol=1e-4, atol=1e-4)
    a.X = s
    with pytest.raises(RuntimeError, match="already scaled"):
        oom.chunked_scale(a)


def test_pca(pbmc_hvg):
    a, mem = pbmc_hvg
    oom.chunked_scale(a, max_value=10)
    X_pca, comps, vr = oom.chunked_pca(a, layer="scaled", n_comps=50, use_highly_variable=True)
    hv = mem.var["highly_variable"].to_numpy()
    assert X_pca.shape == (a.n_obs, 50) and X_pca.dtype == np.float32
    assert comps.shape == (50, hv.sum())
    assert vr.dtype == np.float64 and vr.shape == (50,)
    ref = mem[:, hv].copy()
    sc.pp.scale(ref, max_value=10)
    sc.pp.pca(ref, n_comps=50, svd_solver="covariance_eigh")
    assert abs_cos(X_pca, ref.obsm["X_pca"]).min() >= 0.999
    assert abs_cos(comps.T, ref.varm["PCs"]).min() >= 0.999
    # variance ratio over the total variance (0.1.8 divided by the 60 computed components)
    np.testing.assert_allclose(vr, ref.uns["pca"]["variance_ratio"], rtol=1e-3)
    assert vr.sum() < 0.5


def test_pca_uses_hvf_flag_first(pbmc_hvg):
    a, _ = pbmc_hvg
    oom.chunked_scale(a)
    a.var["highly_variable_features"] = False
    a.var.iloc[:100, a.var.columns.get_loc("highly_variable_features")] = True
    _, comps, _ = oom.chunked_pca(a, n_comps=5)
    assert comps.shape == (5, 100)
    _, comps, _ = oom.chunked_pca(a, n_comps=5, use_highly_variable=False)
    assert comps.shape == (5, a.n_vars)


# -- regress ---------------------------------------------------------------------------------


def test_regress_numeric(pbmc_hvg):
    a, mem = pbmc_hvg
    hv = mem.var["highly_variable"].to_numpy()
    a = a[:, hv]
    ref = mem[:, hv].copy()
    totals = np.asarray(sp.csr_matrix(ad.read_h5ad(a.X.path).X).sum(axis=1)).ravel()
    for obj in (a, ref):
        obj.obs["nUMIs"] = totals
        obj.obs["score"] = np.sin(np.arange(obj.n_obs))
    oom.chunked_regress(a, keys=("nUMIs", "score"))
    assert not a.X.transforms or "regress_out" not in a.X.transforms  # X unchanged
    sc.pp.regress_out(ref, ["nUMIs", "score"])
    reg = a.layers["regressed"]
    assert isinstance(reg, oom.BackedArray) and reg.dtype == np.float32
    np.testing.assert_allclose(dense(reg[:, :400]), dense(ref.X)[:, :400], rtol=1e-4,
                               atol=1e-4)


def test_regress_categorical(gen):
    path, mem = gen
    a = oom.read(path)
    cat = pd.Categorical(np.arange(a.n_obs) % 3)
    a.obs["g"] = cat
    mem.obs["g"] = cat
    oom.chunked_regress(a, keys=["g"])
    X = dense(mem.X).astype(np.float64)
    means = np.stack([X[np.asarray(cat) == k].mean(axis=0) for k in range(3)])
    expected = X - means[np.asarray(cat)]
    np.testing.assert_allclose(dense(a.layers["regressed"]), expected, rtol=1e-5, atol=1e-4)
    with pytest.raises(KeyError):
        oom.chunked_regress(a, keys=["nope"])


# -- scrublet --------------------------------------------------------------------------------


def test_scrublet_prepare(pbmc, pbmc_mem):
    ad_obs, mask, n = oom.chunked_scrublet_prepare(pbmc, min_cells=3, min_genes=3)
    mem = pbmc_mem.copy()
    sc.pp.filter_genes(mem, min_cells=3)
    sc.pp.filter_cells(mem, min_genes=3)
    raw = mem.X.copy()
    sc.pp.normalize_total(mem)
    sc.pp.log1p(mem)
    sc.pp.highly_variable_genes(mem)
    hv = mem.var["highly_variable"].to_numpy()
    assert isinstance(ad_obs, ad.AnnData) and not oom.is_oom(ad_obs)
    assert isinstance(n, int) and n == hv.sum() == mask.sum() == ad_obs.n_vars
    assert mask.shape == (pbmc.n_vars,) and mask.dtype == bool
    assert list(pbmc.var_names[mask]) == list(ad_obs.var_names) == list(mem.var_names[hv])
    assert list(ad_obs.obs_names) == list(mem.obs_names)
    assert set(ad_obs.obs_names) <= set(pbmc.obs_names)
    assert sp.issparse(ad_obs.X) and (ad_obs.X != raw[:, hv]).nnz == 0


# -- CenteredSparseArray ---------------------------------------------------------------------


def test_centered_sparse_array():
    rng = np.random.default_rng(0)
    X = sp.random(60, 40, density=0.2, format="csr", random_state=1, dtype=np.float32) * 5
    Xd = X.toarray().astype(np.float64)
    mean, std = Xd.mean(0), Xd.std(0)
    std[3] = 0
    c = oom.CenteredSparseArray(X, mean, std, max_value=2.0)
    safe = np.where(std > 0, std, 1)
    z = (Xd - mean) / safe
    zc = np.minimum(z, 2.0)  # 0.1.8 clips from above only
    assert c.shape == (60, 40) and c.dtype == np.float32 and c.nnz == X.nnz
    np.testing.assert_allclose(c.toarray(), zc, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(c), zc, rtol=1e-5, atol=1e-5)
    mask = rng.random(40) < 0.5
    np.testing.assert_allclose(c[:, mask], zc[:, mask], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c[5], zc[5:6], rtol=1e-5, atol=1e-5)  # a (1, n) row, as 0.1.8
    W = rng.standard_normal((40, 4))
    np.testing.assert_allclose(c @ W, z @ W, rtol=1e-4, atol=1e-4)  # products are unclipped
    Y = rng.standard_normal((4, 60))
    np.testing.assert_allclose(Y @ c, Y @ z, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(c.T @ Y.T, z.T @ Y.T, rtol=1e-4, atol=1e-4)
    assert c.T.shape == (40, 60) and c.T.T is c
    with pytest.raises(TypeError):
        oom.CenteredSparseArray(Xd, mean, std)


# -- 0.1.8 bugs that must stay fixed ----------------------------------------------------------


def test_mean_axis0_divides_by_rows(gen):
    path, mem = gen
    a = oom.read(path)
    np.testing.assert_allclose(a.X.mean(axis=0), dense(mem.X).mean(axis=0), rtol=1e-6)


def test_raw_rows_follow_cell_filter(pbmc, pbmc_mem):
    oom.chunked_qc_metrics(pbmc)
    pbmc.raw = pbmc
    keep = pbmc.obs["nUMIs"].to_numpy() > 2000
    pbmc._inplace_subset_obs(keep)
    g = "CST3"
    expected = dense(pbmc_mem[keep, g].X).ravel()
    np.testing.assert_array_equal(pbmc.raw.obs_vector(g), expected)
    assert pbmc.raw.X.shape[0] == keep.sum()
