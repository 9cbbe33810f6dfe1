"""normalize_total and log1p vs scanpy: values (≤1e-6), dtypes, sparsity, metadata."""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc

from anndataoom import pp
from anndataoom.testing import assert_x_close

NORM = [
    dict(),
    dict(target_sum=1e4),
    dict(target_sum=1e4, exclude_highly_expressed=True, max_fraction=0.02),
    dict(key_added="norm_factor"),
]


@pytest.mark.parametrize("name", ["csr_f32", "dense_i32", "csc_f64", "csr_i64"])
@pytest.mark.parametrize("kw", NORM)
def test_normalize_total(pair, gen_files, name, kw):
    a, b = pair(gen_files[name])
    pp.normalize_total(a, **kw)
    sc.pp.normalize_total(b, **kw)
    assert_x_close(a.X, b.X, rtol=1e-6, sparse=name != "dense_i32")
    if "key_added" in kw:
        np.testing.assert_allclose(a.obs["norm_factor"], b.obs["norm_factor"], rtol=1e-6)
        assert a.obs["norm_factor"].dtype == b.obs["norm_factor"].dtype


@pytest.mark.parametrize("name", ["csr_f32", "dense_i32", "csr_i64"])
@pytest.mark.parametrize("base", [None, 2])
def test_log1p(pair, gen_files, name, base):
    a, b = pair(gen_files[name])
    pp.log1p(a, base=base)
    sc.pp.log1p(b, base=base)
    assert_x_close(a.X, b.X, rtol=1e-6, sparse=name != "dense_i32")
    assert a.uns["log1p"] == {"base": base}


def test_pbmc_normalize_log1p(pair, pbmc3k_path):
    a, b = pair(pbmc3k_path)
    pp.normalize_total(a, target_sum=1e4)
    pp.log1p(a)
    sc.pp.normalize_total(b, target_sum=1e4)
    sc.pp.log1p(b)
    assert a.X.dtype == np.float32
    assert_x_close(a.X, b.X, rtol=1e-6, sparse=True)
    assert a.uns["log1p"] == b.uns["log1p"]


def test_read_block_and_subset_after_transform(pair, gen_files):
    """Row/column selection after the transforms gathers the per-row factors."""
    a, b = pair(gen_files["csr_f32"])
    pp.normalize_total(a)
    pp.log1p(a)
    sc.pp.normalize_total(b)
    sc.pp.log1p(b)
    rows = np.array([7, 3, 3, 399, 0])
    cols = np.array([5, 1, 1, 599])
    assert_x_close(a[rows, cols].X, b.X[rows][:, cols], rtol=1e-6, sparse=True)
    kind, data, indices, indptr, shape = a.X.matrix.read(10, 20)
    assert kind == "csr" and data.dtype == np.float32
    np.testing.assert_allclose(data, b.X[10:20].data, rtol=1e-6)


def test_layer_inplace_false_copy(pair, gen_files):
    a, b = pair(gen_files["csr_i64"])
    a.layers["counts"] = a.X
    out = pp.normalize_total(a, layer="counts", inplace=False)
    ref = sc.pp.normalize_total(b, inplace=False)
    assert_x_close(out["X"], ref["X"], rtol=1e-6)
    np.testing.assert_allclose(out["norm_factor"], ref["norm_factor"], rtol=1e-6)
    assert a.X.dtype == np.int64  # unchanged
    c = pp.normalize_total(a, copy=True)
    assert c is not a and c.X.dtype == np.float32 and a.X.dtype == np.int64
    c2 = pp.log1p(a, copy=True)
    assert "log1p" not in a.uns and c2.X.dtype == np.float64
    with pytest.raises(ValueError, match="copy=True"):
        pp.normalize_total(a, copy=True, inplace=False)


def test_zero_count_cells_warn(pair, make_h5ad):
    path, _ = make_h5ad(n_obs=50, n_vars=60, empty_rows=[3, 7])
    a, b = pair(path)
    with pytest.warns(UserWarning, match="zero counts"):
        pp.normalize_total(a)
    with pytest.warns(UserWarning, match="zero counts"):
        sc.pp.normalize_total(b)
    assert_x_close(a.X, b.X, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:zero-centering a sparse array")
def test_in_memory_anndata_goes_to_scanpy(gen_files):
    import anndata as ad

    a = ad.read_h5ad(gen_files["csr_f32"])
    b = a.copy()
    pp.normalize_total(a, target_sum=1e4)
    pp.log1p(a)
    pp.scale(a, max_value=5)
    sc.pp.normalize_total(b, target_sum=1e4)
    sc.pp.log1p(b)
    sc.pp.scale(b, max_value=5)
    np.testing.assert_array_equal(a.X, b.X)
    c = pp.normalize_total(ad.read_h5ad(gen_files["csr_f32"]), copy=True)
    assert c.X.dtype == np.float32


@pytest.mark.parametrize("name", ["csr_f32", "dense_i32", "csc_f64"])
def test_normalize_after_qc_reuses_its_row_sums(pair, gen_files, name, monkeypatch):
    """After QC on the same X, normalize_total makes no pass of its own and still equals scanpy."""
    from anndataoom import _distributed as passes

    a, b = pair(gen_files[name])
    pp.calculate_qc_metrics(a, percent_top=None, inplace=True)

    def no_pass(x):
        raise AssertionError("normalize_total re-read X")

    monkeypatch.setattr(passes, "positive_counts", no_pass)
    pp.normalize_total(a, target_sum=1e4)
    sc.pp.normalize_total(b, target_sum=1e4)
    assert_x_close(a.X, b.X, rtol=1e-6, sparse=name != "dense_i32")
    # a subset is another matrix: its sums are computed afresh
    sub = a[::2]
    monkeypatch.undo()
    pp.normalize_total(sub, target_sum=1e4)
    sc.pp.normalize_total(c := b[::2].copy(), target_sum=1e4)
    assert_x_close(sub.X, c.X, rtol=1e-6, sparse=name != "dense_i32")
