"""``oom.experimental.pp``: Pearson residuals, their PCA and the recipe, against scanpy in memory.

scanpy computes the residuals of float32 counts in float32 arithmetic (then
float64), ours in float64, so values agree to float32 rounding and the PCA
built on them to a few units in the sixth digit.
"""

from __future__ import annotations

import hashlib
import warnings

import anndata as ad
import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp

import anndataoom as oom


def _quiet(f, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kw)


@pytest.fixture(scope="module")
def pbmc_genes(pbmc3k_path, tmp_path_factory):
    """PBMC 3k counts of the 1,500 genes seen in most cells (keeps dense results small)."""
    m = _quiet(ad.read_h5ad, pbmc3k_path)
    n_cells = np.asarray((m.X > 0).sum(axis=0)).ravel()
    keep = np.sort(np.argsort(-n_cells, kind="stable")[:1500])
    path = tmp_path_factory.mktemp("pearson") / "pbmc_genes.h5ad"
    m[:, keep].copy().write_h5ad(path)
    return path


@pytest.fixture
def pair(pbmc_genes):
    lazy = oom.read(pbmc_genes)
    yield lazy, _quiet(ad.read_h5ad, pbmc_genes)
    lazy.close()


def _digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _same_pca(lazy, mem, *, rtol=1e-5):
    """Scores and loadings equal up to each component's sign; spectrum equal."""
    s_l, s_m = lazy.obsm["X_pca"], mem.obsm["X_pca"]
    assert s_l.shape == s_m.shape and s_l.dtype == s_m.dtype
    sign = np.sign(np.sum(s_l * s_m, axis=0))
    np.testing.assert_allclose(s_l * sign, s_m, atol=rtol * np.abs(s_m).max())
    np.testing.assert_allclose(lazy.varm["PCs"] * sign, mem.varm["PCs"], atol=1e-5)
    for k in ("variance", "variance_ratio"):
        np.testing.assert_allclose(lazy.uns["pca"][k], mem.uns["pca"][k], rtol=1e-6)


def test_residuals_equal_scanpys_and_stay_lazy(pair):
    lazy, mem = pair
    assert oom.experimental.pp.normalize_pearson_residuals(lazy, theta=50) is None
    sc.experimental.pp.normalize_pearson_residuals(mem, theta=50)
    assert isinstance(lazy.X, oom.BackedArray)
    assert "pearson_residuals" in lazy.X.transforms
    got = lazy.X[:, :].toarray() if hasattr(lazy.X[:, :], "toarray") else lazy.X[:, :]
    assert got.dtype == mem.X.dtype == np.float64
    np.testing.assert_allclose(got, mem.X, rtol=2e-6, atol=2e-6)
    assert lazy.uns["pearson_residuals_normalization"] == mem.uns[
        "pearson_residuals_normalization"]


def test_residuals_of_a_layer_clip_and_not_inplace(pair):
    lazy, mem = pair
    for a in (lazy, mem):
        a.layers["counts"] = a.X
    out_l = oom.experimental.pp.normalize_pearson_residuals(
        lazy, layer="counts", clip=3.0, inplace=False)
    out_m = sc.experimental.pp.normalize_pearson_residuals(
        mem, layer="counts", clip=3.0, inplace=False)
    assert {k: v for k, v in out_l.items() if k != "X"} == {
        k: v for k, v in out_m.items() if k != "X"}
    np.testing.assert_allclose(out_l["X"].to_memory(), out_m["X"], rtol=2e-6, atol=2e-6)
    assert np.abs(out_l["X"].to_memory()).max() == 3.0
    # nothing changed in place
    assert not lazy.layers["counts"].transforms and "pearson_residuals_normalization" not in lazy.uns


def test_copy_leaves_the_input_alone(pair):
    lazy, _ = pair
    out = oom.experimental.pp.normalize_pearson_residuals(lazy, copy=True)
    assert isinstance(out, oom.AnnDataOOM) and "pearson_residuals" in out.X.transforms
    assert not lazy.X.transforms and "pearson_residuals_normalization" not in lazy.uns


def test_residuals_pca_equals_scanpys(pair):
    lazy, mem = pair
    for a, f in ((lazy, oom.experimental.pp), (mem, sc.experimental.pp)):
        _quiet(f.highly_variable_genes, a, n_top_genes=500)
        f.normalize_pearson_residuals_pca(a, n_comps=20)
    _same_pca(lazy, mem)
    assert lazy.uns["pca"]["params"] == mem.uns["pca"]["params"]
    settings = dict(mem.uns["pearson_residuals_normalization"])
    del settings["pearson_residuals_df"]  # n_obs × genes dense: not stored out of core
    assert lazy.uns["pearson_residuals_normalization"] == settings
    assert not lazy.X.transforms  # X keeps the counts
    assert (lazy.varm["PCs"][~lazy.var["highly_variable"].to_numpy()] == 0).all()


def test_residuals_pca_mask_and_not_inplace(pair):
    lazy, mem = pair
    mask = np.zeros(lazy.n_vars, dtype=bool)
    mask[::3] = True
    out_l = oom.experimental.pp.normalize_pearson_residuals_pca(
        lazy, mask_var=mask, n_comps=10, inplace=False)
    out_m = sc.experimental.pp.normalize_pearson_residuals_pca(
        mem, mask_var=mask, n_comps=10, inplace=False)
    assert isinstance(out_l, oom.AnnDataOOM) and out_l.shape == out_m.shape
    assert list(out_l.var_names) == list(out_m.var_names)
    _same_pca(out_l, out_m)
    np.testing.assert_allclose(out_l.X.to_memory(), out_m.X, rtol=2e-6, atol=2e-6)
    assert "X_pca" not in lazy.obsm and "PCs" not in lazy.varm


def test_recipe_equals_scanpys(pair):
    lazy, mem = pair
    oom.experimental.pp.recipe_pearson_residuals(lazy, n_top_genes=400, n_comps=15)
    sc.experimental.pp.recipe_pearson_residuals(mem, n_top_genes=400, n_comps=15)
    for col in ("highly_variable", "highly_variable_rank"):
        np.testing.assert_array_equal(lazy.var[col], mem.var[col])
    np.testing.assert_allclose(lazy.var["residual_variances"], mem.var["residual_variances"],
                               rtol=1e-6)
    _same_pca(lazy, mem)
    assert lazy.uns["hvg"] == mem.uns["hvg"]
    assert lazy.uns["pca"]["params"] == mem.uns["pca"]["params"]
    assert not lazy.X.transforms


def test_recipe_with_batches_not_inplace(pair):
    lazy, mem = pair
    batch = np.random.default_rng(0).choice(["a", "b", "c"], lazy.n_obs)
    for a in (lazy, mem):
        a.obs["batch"] = batch
    out_l, hvg_l = oom.experimental.pp.recipe_pearson_residuals(
        lazy, n_top_genes=300, batch_key="batch", n_comps=10, inplace=False)
    out_m, hvg_m = sc.experimental.pp.recipe_pearson_residuals(
        mem, n_top_genes=300, batch_key="batch", n_comps=10, inplace=False)
    assert list(hvg_l.columns) == list(hvg_m.columns)
    np.testing.assert_array_equal(hvg_l["highly_variable"], hvg_m["highly_variable"])
    np.testing.assert_array_equal(hvg_l["highly_variable_nbatches"],
                                  hvg_m["highly_variable_nbatches"])
    assert list(out_l.var_names) == list(out_m.var_names)
    assert list(out_l.obs.columns) == list(out_m.obs.columns)
    _same_pca(out_l, out_m)
    assert "highly_variable" not in lazy.var and "X_pca" not in lazy.obsm


def test_in_memory_data_goes_to_scanpy(pair):
    _, mem = pair
    ref = mem.copy()
    oom.experimental.pp.normalize_pearson_residuals(mem)
    sc.experimental.pp.normalize_pearson_residuals(ref)
    np.testing.assert_array_equal(mem.X, ref.X)


def test_non_counts_warn_as_scanpy(tmp_path):
    path = tmp_path / "f.h5ad"
    x = np.random.default_rng(1).gamma(2.0, size=(50, 30)).astype(np.float32)
    ad.AnnData(sp.csr_matrix(x)).write_h5ad(path)
    lazy, mem = oom.read(path), ad.read_h5ad(path)
    with pytest.warns(UserWarning, match="expects raw count data"):
        sc.experimental.pp.normalize_pearson_residuals(mem)
    with pytest.warns(UserWarning, match="expects raw count data"):
        oom.experimental.pp.normalize_pearson_residuals(lazy)
    lazy.close()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda a: oom.experimental.pp.normalize_pearson_residuals(a, theta=0), ValueError,
         "theta > 0"),
        (lambda a: oom.experimental.pp.normalize_pearson_residuals(a, clip=-1), ValueError,
         "clip>=0"),
        (lambda a: oom.experimental.pp.normalize_pearson_residuals(a, inplace=False, copy=True),
         ValueError, "cannot be used"),
        (lambda a: oom.experimental.pp.normalize_pearson_residuals(a, layer="nope"), KeyError,
         "nope"),
        (lambda a: oom.experimental.pp.normalize_pearson_residuals_pca(a, mask_var="nope"),
         ValueError, "Did not find"),
        (lambda a: oom.experimental.pp.normalize_pearson_residuals_pca(a, n_comps=10_000),
         ValueError, "n_comps"),
        (lambda a: oom.experimental.pp.recipe_pearson_residuals(a, batch_key="nope"), KeyError,
         "nope"),
        (lambda a: oom.experimental.pp.highly_variable_genes(a, n_top_genes=10, flavor="seurat"),
         ValueError, "only `flavor=pearson_residuals`"),
        (lambda a: oom.experimental.pp.highly_variable_genes(a), ValueError, "n_top_genes"),
    ],
)
def test_bad_input_is_typed_and_leaves_file_and_object_intact(pbmc_genes, call, error, match):
    before = _digest(pbmc_genes)
    a = oom.read(pbmc_genes)
    with pytest.raises(error, match=match):
        call(a)
    assert not a.X.transforms and "pearson_residuals_normalization" not in a.uns
    assert "highly_variable" not in a.var
    a.close()
    assert _digest(pbmc_genes) == before


def test_scanpys_own_is_refused_naming_ours(pair):
    lazy, _ = pair
    for name in ("normalize_pearson_residuals", "normalize_pearson_residuals_pca",
                 "recipe_pearson_residuals"):
        with pytest.raises(oom.InMemoryRequiredError, match=f"oom.experimental.pp.{name}"):
            _quiet(getattr(sc.experimental.pp, name), lazy)
