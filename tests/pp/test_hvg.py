"""highly_variable_genes vs scanpy in memory: each flavor × batch_key, on
PBMC 3k and generated data. Gene sets identical, var columns within 1e-5."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import anndataoom as oom
from anndataoom import pp
from anndataoom.testing import assert_frame_close

FLAVORS = ["seurat", "cell_ranger", "seurat_v3", "seurat_v3_paper", "pearson_residuals"]
LOG_FLAVORS = {"seurat", "cell_ranger"}


def _prepare(a, b, flavor, seed=0):
    """Filter like the tutorial; log-normalise for the dispersion flavors."""
    rng = np.random.default_rng(seed)
    batch = pd.Categorical(rng.choice(["b1", "b2", "b3"], size=a.n_obs, p=[0.5, 0.3, 0.2]))
    for x in (a, b):
        x.obs["bk"] = batch
    for f, kw in [("filter_cells", dict(min_genes=20)), ("filter_genes", dict(min_cells=3))]:
        getattr(pp, f)(a, **kw)
        getattr(sc.pp, f)(b, **kw)
    if flavor in LOG_FLAVORS:
        pp.normalize_total(a, target_sum=1e4)
        pp.log1p(a)
        sc.pp.normalize_total(b, target_sum=1e4)
        sc.pp.log1p(b)


def _run_scanpy(b, flavor, **kw):
    if flavor == "pearson_residuals":
        return sc.experimental.pp.highly_variable_genes(b, flavor=flavor, **kw)
    return sc.pp.highly_variable_genes(b, flavor=flavor, **kw)


def _compare(a, b, cols_before):
    new = [c for c in b.var.columns if c not in cols_before]
    assert [c for c in a.var.columns if c not in cols_before] == new
    np.testing.assert_array_equal(a.var["highly_variable"], b.var["highly_variable"])
    assert_frame_close(a.var, b.var, rtol=1e-5, atol=1e-6, cols=new)
    assert a.uns["hvg"] == b.uns["hvg"]


@pytest.mark.parametrize("batch_key", [None, "bk"])
@pytest.mark.parametrize("flavor", FLAVORS)
def test_hvg_pbmc(pair, pbmc3k_path, flavor, batch_key):
    a, b = pair(pbmc3k_path)
    _prepare(a, b, flavor)
    cols = list(b.var.columns)
    kw = dict(n_top_genes=2000, batch_key=batch_key)
    pp.highly_variable_genes(a, flavor=flavor, **kw)
    _run_scanpy(b, flavor, **kw)
    _compare(a, b, cols)


@pytest.mark.parametrize("name", ["csr_f32", "dense_i32"])
@pytest.mark.parametrize("batch_key", [None, "bk"])
@pytest.mark.parametrize("flavor", FLAVORS)
def test_hvg_generated(pair, gen_files, name, flavor, batch_key):
    a, b = pair(gen_files[name])
    _prepare(a, b, flavor)
    cols = list(b.var.columns)
    kw = dict(n_top_genes=100, batch_key=batch_key)
    try:
        _run_scanpy(b, flavor, **kw)
    except ValueError as e:
        with pytest.raises(ValueError, match=str(e).split("\n")[0][:30]):
            pp.highly_variable_genes(a, flavor=flavor, **kw)
        return
    pp.highly_variable_genes(a, flavor=flavor, **kw)
    _compare(a, b, cols)


@pytest.mark.parametrize("batch_key", [None, "bk"])
@pytest.mark.parametrize("flavor", ["seurat", "cell_ranger"])
def test_hvg_cutoffs(pair, pbmc3k_path, flavor, batch_key):
    a, b = pair(pbmc3k_path)
    _prepare(a, b, flavor)
    cols = list(b.var.columns)
    kw = dict(min_mean=0.0125, max_mean=3, min_disp=0.5, batch_key=batch_key)
    pp.highly_variable_genes(a, flavor=flavor, **kw)
    sc.pp.highly_variable_genes(b, flavor=flavor, **kw)
    _compare(a, b, cols)


@pytest.mark.parametrize("flavor", ["seurat", "seurat_v3", "pearson_residuals"])
def test_hvg_subset_and_not_inplace(pair, gen_files, flavor):
    a, b = pair(gen_files["csr_f32"])
    _prepare(a, b, flavor)
    df = pp.highly_variable_genes(a, flavor=flavor, n_top_genes=50, inplace=False)
    ref = _run_scanpy(b, flavor, n_top_genes=50, inplace=False)
    assert list(df.columns) == list(ref.columns)
    np.testing.assert_array_equal(df["highly_variable"], ref["highly_variable"])
    pp.highly_variable_genes(a, flavor=flavor, n_top_genes=50, subset=True)
    _run_scanpy(b, flavor, n_top_genes=50, subset=True)
    assert list(a.var_names) == list(b.var_names)
    assert a.n_vars == 50


def test_hvg_layer_and_seurat_log_base(pair, pbmc3k_path):
    a, b = pair(pbmc3k_path)
    _prepare(a, b, "seurat_v3")
    a.layers["counts"] = a.X
    b.layers["counts"] = b.X.copy()
    for x, m in ((a, pp), (b, sc.pp)):
        m.normalize_total(x, target_sum=1e4)
        m.log1p(x, base=2)
    cols = list(b.var.columns)
    pp.highly_variable_genes(a, flavor="seurat", n_top_genes=1000)
    sc.pp.highly_variable_genes(b, flavor="seurat", n_top_genes=1000)
    _compare(a, b, cols)
    cols = list(b.var.columns)
    pp.highly_variable_genes(a, flavor="seurat_v3", n_top_genes=1000, layer="counts")
    sc.pp.highly_variable_genes(b, flavor="seurat_v3", n_top_genes=1000, layer="counts")
    _compare(a, b, cols)


def test_hvg_counts_flavor_warns_on_logdata(pair, gen_files):
    a, _ = pair(gen_files["csr_f32"])
    pp.normalize_total(a)
    pp.log1p(a)
    with pytest.warns(UserWarning, match="non-integers"):
        pp.highly_variable_genes(a, flavor="seurat_v3", n_top_genes=50)


def test_hvg_cell_ranger_raises_on_unfiltered(pair, make_h5ad):
    path, _ = make_h5ad(n_obs=40, n_vars=300, density=0.01, seed=2)
    a, b = pair(path)
    with pytest.raises(ValueError, match="Bin edges must be unique"):
        sc.pp.highly_variable_genes(b, flavor="cell_ranger", n_top_genes=10)
    with pytest.raises(ValueError, match="(?s)Bin edges must be unique.*filter_genes"):
        pp.highly_variable_genes(a, flavor="cell_ranger", n_top_genes=10)


def test_hvg_unknown_batch_key_names_it(pair, gen_files):
    a, b = pair(gen_files["csr_f32"])
    with pytest.raises(KeyError):
        sc.pp.highly_variable_genes(b, n_top_genes=10, batch_key="donor")
    for flavor in ("seurat", "seurat_v3", "pearson_residuals"):
        with pytest.raises(KeyError, match="batch_key='donor' is not a column of adata.obs"):
            pp.highly_variable_genes(a, n_top_genes=10, flavor=flavor, batch_key="donor")
    assert "highly_variable" not in a.var


def test_hvg_without_finite_dispersions_says_why(pair, gen_files):
    """Negative size factors leave log1p's NaN everywhere; scanpy fails on an empty index."""
    a, b = pair(gen_files["csr_f32"])
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore")  # zero counts, NaN from log1p
        for x, p in ((b, sc.pp), (a, pp)):
            p.normalize_total(x, target_sum=-1.0)
            p.log1p(x)
        with pytest.raises(IndexError):
            sc.pp.highly_variable_genes(b, n_top_genes=10)
        with pytest.raises(ValueError, match="no gene has a finite normalized dispersion"):
            pp.highly_variable_genes(a, n_top_genes=10)


def test_pearson_empty_cell_nan_like_scanpy(pair, make_h5ad):
    path, _ = make_h5ad(n_obs=100, n_vars=80, density=0.2, empty_rows=[3])
    a, b = pair(path)
    ref = sc.experimental.pp.highly_variable_genes(b, flavor="pearson_residuals", n_top_genes=10,
                                                   inplace=False)
    with pytest.warns(UserWarning, match="zero counts"):
        df = pp.highly_variable_genes(a, flavor="pearson_residuals", n_top_genes=10,
                                      inplace=False)
    assert df["residual_variances"].isna().all() and ref["residual_variances"].isna().all()
    np.testing.assert_array_equal(df["highly_variable"], ref["highly_variable"])


@pytest.mark.parametrize("flavor", ["seurat_v3", "seurat_v3_paper"])
def test_seurat_v3_batch_of_one_cell_is_refused_not_a_crash(make_h5ad, flavor):
    """skmisc's loess segfaults on < 4 points (scanpy crashes the process here)."""
    path, _ = make_h5ad(n_obs=60, n_vars=80, density=0.3, seed=5)
    a = oom.read(path)
    a.obs["batch"] = ["solo"] + ["many"] * 59
    with pytest.raises(ValueError, match="batch 'solo' of 'batch' has 1 cell"):
        pp.highly_variable_genes(a, flavor=flavor, n_top_genes=10, batch_key="batch")
    with pytest.raises(ValueError, match="the data has 1 cell"):
        pp.highly_variable_genes(a[:1], flavor=flavor, n_top_genes=10)
    assert "highly_variable" not in a.var


@pytest.mark.parametrize("flavor", ["seurat", "cell_ranger", "seurat_v3", "pearson_residuals"])
def test_hvg_refuses_nan_values_and_names_the_genes(tmp_path, flavor):
    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    x = rng.poisson(2.0, (80, 30)).astype(np.float32)
    x[5, 7] = np.nan
    x[9, 3] = np.inf
    ad.AnnData(sp.csr_matrix(x)).write_h5ad(tmp_path / "nan.h5ad")
    a = oom.read(tmp_path / "nan.h5ad")
    if flavor in ("seurat", "cell_ranger"):
        pp.log1p(a)
    with pytest.raises(ValueError, match=r"NaN or infinite values in 2 gene\(s\), e.g. \['3', '7'\]"):
        pp.highly_variable_genes(a, flavor=flavor, n_top_genes=10, check_values=False)
