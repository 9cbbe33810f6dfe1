"""Reading Zarr v2/v3 stores written by anndata: same values and API as ``.h5ad``."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from _stores import small_anndata, write_store

import anndataoom as oom
from anndataoom.testing import assert_adata_equal, dense


@pytest.mark.parametrize("fmt_x", ["csr", "csc", "dense"])
def test_read_equals_anndata(tmp_path, store_kind, fmt_x):
    mem = small_anndata(fmt_x)
    path = write_store(mem, tmp_path / "a.zarr", *store_kind)
    a = oom.read(path)
    assert isinstance(a, oom.AnnDataOOM)
    assert a.X.is_sparse == sp.issparse(mem.X)
    assert_adata_equal(a, ad.read_zarr(path))
    assert a.uns["note"] == "kept"


def test_indexing_and_sums(tmp_path, store_kind):
    mem = small_anndata("csr")
    a = oom.read(write_store(mem, tmp_path / "a.zarr", *store_kind))
    rows = np.array([650, 3, 3, 0, 512, 257])
    np.testing.assert_array_equal(dense(a[rows, ::3].X.to_memory()), mem.X[rows][:, ::3].toarray())
    np.testing.assert_allclose(a.X.sum(axis=0), np.asarray(mem.X.sum(axis=0)).ravel(), rtol=1e-6)
    np.testing.assert_allclose(a.X.sum(axis=1), np.asarray(mem.X.sum(axis=1)).ravel(), rtol=1e-6)


def test_raw_is_lazy(tmp_path):
    mem = small_anndata("csr")
    mem.raw = mem
    path = tmp_path / "raw.zarr"
    with ad.settings.override(zarr_write_format=3, auto_shard_zarr_v3=False):
        mem.write_zarr(path)
    a = oom.read_zarr(path)
    assert isinstance(a.raw.X, oom.BackedArray)
    np.testing.assert_array_equal(dense(a.raw.X.to_memory()), mem.raw.X.toarray())


def test_pipeline_same_on_zarr_and_h5ad(tmp_path):
    """QC → normalize → log1p → HVG → scale → PCA gives the same numbers from either format."""
    mem = small_anndata("csr", n_obs=900, n_vars=200, seed=4)
    h5 = tmp_path / "a.h5ad"
    mem.write_h5ad(h5)
    zs = write_store(mem, tmp_path / "a.zarr", 3, "default", True)
    out = []
    for p in (h5, zs):
        a = oom.read(p)
        oom.pp.calculate_qc_metrics(a, percent_top=None, inplace=True)
        oom.pp.normalize_total(a, target_sum=1e4)
        oom.pp.log1p(a)
        oom.pp.highly_variable_genes(a, n_top_genes=50)
        a = a[:, a.var["highly_variable"]]
        oom.pp.scale(a, max_value=10)
        oom.pp.pca(a, n_comps=10)
        out.append(a)
    h, z = out
    np.testing.assert_array_equal(h.obs["total_counts"], z.obs["total_counts"])
    assert list(h.var_names) == list(z.var_names)
    np.testing.assert_array_equal(h.obsm["X_pca"], z.obsm["X_pca"])


def test_concat_across_formats(tmp_path):
    """``oom.concat`` stacks a Zarr store and an ``.h5ad`` lazily, as anndata.concat does."""
    a_mem, b_mem = small_anndata("csr", seed=1), small_anndata("dense", n_obs=300, seed=2)
    b_mem.obs_names = [f"d{i}" for i in range(b_mem.n_obs)]
    za = write_store(a_mem, tmp_path / "a.zarr", 3)
    b_mem.write_h5ad(tmp_path / "b.h5ad")
    got = oom.concat([oom.read(za), oom.read(tmp_path / "b.h5ad")], label="batch")
    want = ad.concat([a_mem, b_mem], label="batch")
    np.testing.assert_array_equal(dense(got.X.to_memory()), dense(want.X))
    assert list(got.obs["batch"]) == list(want.obs["batch"])


def test_dask_export_from_zarr(tmp_path):
    """``X.to_dask()`` of a Zarr-backed object: workers reopen the store from its plan."""
    mem = small_anndata("csr")
    a = oom.read(write_store(mem, tmp_path / "a.zarr", 2))
    oom.pp.normalize_total(a, target_sum=100)
    got = a.X.to_dask(chunks=128).compute(scheduler="processes")
    np.testing.assert_allclose(dense(got), dense(a.X.to_memory()), rtol=1e-6)


def test_read_zarr_from_open_group(tmp_path):
    """An open local ``zarr.Group`` is accepted like its path; other stores are refused."""
    import zarr

    mem = small_anndata("csr")
    path = write_store(mem, tmp_path / "a.zarr", 3)
    assert_adata_equal(oom.read_zarr(zarr.open_group(path, mode="r")), ad.read_zarr(path))
    with pytest.raises(TypeError, match="local file system"):
        oom.read_zarr(zarr.open_group(zarr.storage.MemoryStore(), mode="w"))
