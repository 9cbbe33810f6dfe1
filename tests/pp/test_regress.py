"""``oom.pp.regress_out`` against scanpy in memory (≤ 1e-5 relative)."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import anndataoom as oom
from anndataoom.testing import dense as to_dense


def _obs(index, seed=0):
    rng = np.random.default_rng(seed)
    n = len(index)
    a = rng.normal(size=n)
    return pd.DataFrame(
        {
            "a": a,
            "b": rng.integers(0, 5, n).astype(float),
            "a2": 2.0 * a,  # makes [1, a, a2] singular
            "cat": pd.Categorical(rng.choice(["x", "y", "z"], n)),
            "catn": pd.Categorical(rng.choice(["x", "y", None], n)),
            "s": rng.choice(["u", "v"], n),  # strings: categorical after sanitizing
        },
        index=index,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from anndataoom.testing import gen_h5ad

    d = tmp_path_factory.mktemp("regress")
    out = {}
    for fmt, dtype in [("csr", "float32"), ("dense", "int32"), ("csc", "float64"), ("csr", "int64")]:
        p = d / f"{fmt}_{dtype}.h5ad"
        gen_h5ad(p, n_obs=300, n_vars=40, fmt=fmt, dtype=dtype, density=0.3, seed=5,
                 empty_cols=(3,))
        out[f"{fmt}_{dtype}"] = p
    return out


def _both(pair, path, keys, **kw):
    a, m = pair(path)
    obs = _obs(a.obs_names)
    a.obs, m.obs = obs.copy(), obs.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oom.pp.regress_out(a, keys, **kw)
        sc.pp.regress_out(m, keys, **kw)
    return a, m


def assert_close(ours, theirs):
    x = ours.to_memory()
    y = to_dense(theirs)
    assert x.dtype == y.dtype, (x.dtype, y.dtype)
    assert isinstance(x, np.ndarray)
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5 * np.abs(y).max())


@pytest.mark.parametrize("name", ["csr_float32", "dense_int32", "csc_float64", "csr_int64"])
@pytest.mark.parametrize("keys", [["a", "b"], "a", "cat", "catn", ["a", "a2"], "s"])
def test_matches_scanpy(pair, files, name, keys):
    a, m = _both(pair, files[name], keys)
    assert_close(a.X, m.X)
    assert "regress_out" in a.X.transforms


def test_after_log1p_on_a_layer_and_copy(pair, files):
    a, m = pair(files["csr_float32"])
    obs = _obs(a.obs_names, seed=3)
    a.obs, m.obs = obs.copy(), obs.copy()
    a.layers["lg"] = oom.pp.log1p(a.X)
    m.layers["lg"] = np.log1p(m.X)
    b = oom.pp.regress_out(a, ["a", "b"], layer="lg", copy=True)
    sc.pp.regress_out(m, ["a", "b"], layer="lg")
    assert_close(b.layers["lg"], m.layers["lg"])
    assert "regress_out" not in getattr(a.layers["lg"], "transforms", ())


def test_subsetting_after_regress(pair, files):
    a, m = _both(pair, files["dense_int32"], ["a", "b"])
    rows = np.array([5, 2, 2, 299, 0])
    cols = np.array([7, 1, 39])
    sub = a[rows, cols]
    assert_close(sub.X, m.X[rows][:, cols])
    a2, m2 = _both(pair, files["csr_float32"], "catn")
    assert_close(a2[rows, cols].X, m2.X[rows][:, cols])


def test_errors_and_in_memory(pair, files):
    a, m = pair(files["csr_float32"])
    obs = _obs(a.obs_names)
    a.obs, m.obs = obs.copy(), obs.copy()
    with pytest.raises(ValueError, match="only a single one"):
        oom.pp.regress_out(a, ["cat", "a"])
    with pytest.raises(KeyError):
        oom.pp.regress_out(a, ["nope"])
    m2 = m.copy()
    oom.pp.regress_out(m, ["a"])  # in memory: scanpy
    sc.pp.regress_out(m2, ["a"])
    np.testing.assert_array_equal(to_dense(m.X), to_dense(m2.X))


def test_pbmc3k_qc_keys_then_pca(pbmc3k_path):
    """The tutorial step: regress out total counts and % mito, then PCA."""
    a, m = oom.read(pbmc3k_path), ad.read_h5ad(pbmc3k_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mod, x in ((oom, a), (sc, m)):
            x.var["mt"] = x.var_names.str.startswith("MT-")
            mod.pp.calculate_qc_metrics(x, qc_vars=["mt"], inplace=True)
            mod.pp.filter_genes(x, min_cells=3)
            mod.pp.normalize_total(x, target_sum=1e4)
            mod.pp.log1p(x)
            mod.pp.highly_variable_genes(x, n_top_genes=500, subset=True)
            mod.pp.regress_out(x, ["total_counts", "pct_counts_mt"])
    assert_close(a.X, m.X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mod, x in ((oom, a), (sc, m)):
            mod.pp.scale(x, max_value=10)
            mod.pp.pca(x, n_comps=30)
    c = np.abs((a.varm["PCs"] * m.varm["PCs"]).sum(0))
    assert c.min() >= 0.999
    a.close()
