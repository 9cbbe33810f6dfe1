"""AnnData completeness: layers, raw, obsm/varm/obsp/varp/uns, copy, write of everything."""

from __future__ import annotations

import os
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import anndataoom as oom
from anndataoom._core._backed_array import BackedArray


def _dense(x):
    if isinstance(x, BackedArray):
        x = x.to_memory()
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def _read_plain(path) -> ad.AnnData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path)


@pytest.fixture
def rich(make_h5ad, tmp_path):
    """A file with layers, raw, obsm/varm/obsp/varp and nested uns, and its in-memory twin."""
    path, mem = make_h5ad("src.h5ad", n_obs=70, n_vars=50, density=0.3, seed=11)
    rng = np.random.default_rng(0)
    mem.layers["counts"] = mem.X.copy()
    mem.layers["dense"] = mem.X.toarray() * 2
    mem.raw = mem
    mem.obsm["X_pca"] = rng.normal(size=(70, 5)).astype(np.float32)
    mem.obsm["df"] = pd.DataFrame({"u": np.arange(70)}, index=mem.obs_names)
    mem.varm["PCs"] = rng.normal(size=(50, 5))
    mem.obsp["distances"] = sp.random(70, 70, density=0.05, format="csr", random_state=1)
    mem.varp["corr"] = rng.normal(size=(50, 50))
    mem.uns["nested"] = {"a": np.arange(3), "b": {"c": "text"}}
    src = tmp_path / "in" / "rich.h5ad"
    src.parent.mkdir()
    mem.write_h5ad(src)
    os.remove(path)
    return src, mem


def test_read_everything_lazy(rich):
    src, mem = rich
    a = oom.read(src)
    assert isinstance(a.X, BackedArray)
    assert all(isinstance(v, BackedArray) for v in a.layers.values())
    assert isinstance(a.raw.X, BackedArray)
    for k in ("counts", "dense"):
        np.testing.assert_array_equal(_dense(a.layers[k]), _dense(mem.layers[k]))
    np.testing.assert_array_equal(_dense(a.raw.X), _dense(mem.raw.X))
    np.testing.assert_array_equal(a.obsm["X_pca"], mem.obsm["X_pca"])
    pd.testing.assert_frame_equal(a.obsm["df"], mem.obsm["df"])
    np.testing.assert_array_equal(a.varm["PCs"], mem.varm["PCs"])
    np.testing.assert_array_equal(a.obsp["distances"].toarray(), mem.obsp["distances"].toarray())
    np.testing.assert_array_equal(a.varp["corr"], mem.varp["corr"])
    np.testing.assert_array_equal(a.uns["nested"]["a"], mem.uns["nested"]["a"])
    assert a.uns["nested"]["b"]["c"] == "text"


def test_pipeline_layers_are_lazy_snapshots_and_no_sidecars(rich):
    src, mem = rich
    listing = sorted(os.listdir(src.parent))
    a = oom.read(src)
    a.layers["raw_counts"] = a.X  # a lazy reference, not a copy
    assert a.layers["raw_counts"].matrix is a.X.matrix
    oom.pp.normalize_total(a, target_sum=1e4)
    oom.pp.log1p(a)
    a.raw = a  # lazy snapshot of the transformed X
    oom.pp.scale(a, max_value=10)
    np.testing.assert_array_equal(_dense(a.layers["raw_counts"]), _dense(mem.X))
    import scanpy as sc

    m = mem.copy()
    sc.pp.normalize_total(m, target_sum=1e4)
    sc.pp.log1p(m)
    np.testing.assert_allclose(_dense(a.raw.X), _dense(m.X), rtol=1e-6, atol=1e-7)
    assert isinstance(a.raw.X, BackedArray)
    np.testing.assert_allclose(a.raw.obs_vector(m.var_names[3]), m.obs_vector(m.var_names[3]),
                               rtol=1e-6, atol=1e-7)
    assert sorted(os.listdir(src.parent)) == listing  # nothing written next to the input


def test_copy_is_independent(rich):
    src, _ = rich
    a = oom.read(src)
    b = a.copy()
    b.obs["new"] = 1
    b.obsm["X_pca"][:] = 0
    b.uns["nested"]["a"][:] = -1
    b.layers["extra"] = b.X
    del b.layers["counts"]
    oom.pp.log1p(b)
    assert "new" not in a.obs
    assert np.abs(a.obsm["X_pca"]).sum() > 0
    assert a.uns["nested"]["a"].tolist() == [0, 1, 2]
    assert set(a.layers) == {"counts", "dense"}
    assert a.X.transforms == ()


def test_write_everything_opens_in_plain_anndata(rich, tmp_path):
    src, mem = rich
    a = oom.read(src)
    a.layers["counts_snapshot"] = a.X
    oom.pp.normalize_total(a, target_sum=1e4)
    a.obsm["X_umap"] = np.zeros((a.n_obs, 2))
    a.uns["params"] = {"k": 3}
    out = tmp_path / "out.h5ad"
    a.write_h5ad(out)
    back = _read_plain(out)
    assert set(back.layers) == {"counts", "dense", "counts_snapshot"}
    np.testing.assert_array_equal(_dense(back.layers["counts_snapshot"]), _dense(mem.X))
    assert sp.issparse(back.X) and sp.issparse(back.layers["counts"])
    np.testing.assert_allclose(np.ravel(back.X.sum(axis=1)), 1e4, rtol=1e-4)
    assert back.raw is not None and back.raw.shape == mem.raw.shape
    for k in ("X_pca", "df", "X_umap"):
        assert k in back.obsm
    assert set(back.varm) == {"PCs"} and set(back.obsp) == {"distances"}
    assert set(back.varp) == {"corr"}
    assert back.uns["params"]["k"] == 3 and back.uns["nested"]["b"]["c"] == "text"


def test_subset_then_write_keeps_alignment(rich, tmp_path):
    src, mem = rich
    a = oom.read(src)
    rows, cols = np.array([9, 2, 2, 40]), np.array([3, 1, 7])
    sub = a[rows, cols]
    msub = mem[rows, cols]
    out = tmp_path / "sub.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sub.write_h5ad(out)
    back = _read_plain(out)
    np.testing.assert_array_equal(_dense(back.X), _dense(msub.X))
    np.testing.assert_array_equal(back.obsp["distances"].toarray(),
                                  msub.obsp["distances"].toarray())
    np.testing.assert_array_equal(back.varp["corr"], msub.varp["corr"])
    np.testing.assert_array_equal(_dense(back.raw.X), _dense(msub.raw.X))
