"""scale vs scanpy in memory: values (≤1e-5), var['mean']/var['std'], clip, masks."""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc

from anndataoom import pp
from anndataoom.testing import assert_x_close
from anndataoom.testing import dense as to_dense


def _lognorm(a, b):
    pp.normalize_total(a, target_sum=1e4)
    pp.log1p(a)
    sc.pp.normalize_total(b, target_sum=1e4)
    sc.pp.log1p(b)


def _check(a, b, names=("mean", "std")):
    x = a.X.to_memory()
    np.testing.assert_allclose(to_dense(x), to_dense(b.X), rtol=1e-5, atol=1e-5)
    for c in names:
        assert a.var[c].dtype == b.var[c].dtype == np.float64
        np.testing.assert_allclose(a.var[c], b.var[c], rtol=1e-6)


@pytest.mark.filterwarnings("ignore:zero-centering a sparse array")
@pytest.mark.parametrize("name", ["csr_f32", "dense_i32", "csc_f64"])
@pytest.mark.parametrize("kw", [dict(), dict(max_value=1.5), dict(zero_center=False),
                                dict(zero_center=False, max_value=2.0)])
def test_scale_generated(pair, gen_files, name, kw):
    a, b = pair(gen_files[name])
    _lognorm(a, b)
    pp.scale(a, **kw)
    sc.pp.scale(b, **kw)
    _check(a, b)
    zc = kw.get("zero_center", True)
    assert a.X.is_sparse == (name != "dense_i32" and not zc)
    assert a.X.dtype == (np.float64 if name == "csc_f64" else np.float32)


@pytest.mark.filterwarnings("ignore:zero-centering a sparse array")
def test_scale_pbmc_hvg_subset(pair, pbmc3k_path):
    a, b = pair(pbmc3k_path)
    for x, m in ((a, pp), (b, sc.pp)):
        m.filter_cells(x, min_genes=200)
        m.filter_genes(x, min_cells=3)
    _lognorm(a, b)
    pp.highly_variable_genes(a, n_top_genes=2000, subset=True)
    sc.pp.highly_variable_genes(b, n_top_genes=2000, subset=True)
    pp.scale(a, max_value=10)
    sc.pp.scale(b, max_value=10)
    _check(a, b)
    # rows and columns picked after the scale keep their per-column parameters
    rows, cols = np.array([5, 0, 5, 2699]), np.array([1999, 3, 3, 0])
    np.testing.assert_allclose(to_dense(a[rows, cols].X), b.X[rows][:, cols], rtol=1e-5,
                               atol=1e-5)


@pytest.mark.filterwarnings("ignore:zero-centering a sparse array")
@pytest.mark.parametrize("zero_center", [True, False])
def test_scale_mask_obs(pair, gen_files, zero_center):
    a, b = pair(gen_files["dense_i32"])
    _lognorm(a, b)
    mask = np.arange(a.n_obs) % 3 == 0
    for x in (a, b):
        x.obs["m"] = mask
    pp.scale(a, mask_obs="m", zero_center=zero_center, max_value=3)
    sc.pp.scale(b, mask_obs="m", zero_center=zero_center, max_value=3)
    _check(a, b, names=("mean of m", "std of m"))


def test_scale_copy_layer_int(pair, gen_files):
    a, b = pair(gen_files["csr_i64"])
    a.layers["c"] = a.X
    b.layers["c"] = b.X.copy()
    c = pp.scale(a, layer="c", zero_center=False, copy=True)
    sc.pp.scale(b, layer="c", zero_center=False)
    assert "mean" not in a.var and a.layers["c"].dtype == np.int64
    assert_x_close(c.layers["c"], b.layers["c"], rtol=1e-6, sparse=True)
    np.testing.assert_allclose(c.var["std"], b.var["std"], rtol=1e-6)


@pytest.mark.filterwarnings("ignore:zero-centering a sparse array")
@pytest.mark.parametrize("name", ["csr_f32", "dense_i32", "csc_f64"])
def test_scale_after_seurat_hvg_reuses_its_pass(gen_files, monkeypatch, name):
    # seurat's HVG pass leaves the log data's column moments; scale on the HVG
    # subset takes them instead of reading again, and gets the same bits.
    from anndataoom import _oom
    from anndataoom import read as oom_read

    path = gen_files[name]
    fused, direct = oom_read(path), oom_read(path)
    for a in (fused, direct):
        pp.normalize_total(a, target_sum=1e4)
        pp.log1p(a)
    pp.highly_variable_genes(fused, n_top_genes=100, flavor="seurat")
    hvg = fused.var["highly_variable"].to_numpy()
    fused, direct = fused[:, hvg], direct[:, hvg]
    calls: list[int] = []
    real = _oom.moments

    def spy(m, *args, **kw):
        calls.append(int(m.shape[1]))
        return real(m, *args, **kw)

    monkeypatch.setattr(_oom, "moments", spy)
    pp.scale(fused, max_value=10)
    assert calls == [], "scale after seurat's HVG makes no pass"
    pp.scale(direct, max_value=10)
    assert calls == [100]
    for c in ("mean", "std"):
        np.testing.assert_array_equal(fused.var[c], direct.var[c])
    np.testing.assert_array_equal(to_dense(fused.X.to_memory()), to_dense(direct.X.to_memory()))
    # and scanpy agrees, as for any scale
    b = sc.read_h5ad(path)
    sc.pp.normalize_total(b, target_sum=1e4)
    sc.pp.log1p(b)
    b = b[:, hvg].copy()
    sc.pp.scale(b, max_value=10)
    _check(fused, b)


def test_a_constant_gene_scales_to_zeros_not_nan(tmp_path):
    """Its variance (sums of squares minus the squared mean) can round below 0."""
    import anndata as ad

    import anndataoom as oom

    rng = np.random.default_rng(3)
    x = np.column_stack([np.full(200, 1.1), rng.normal(size=200)]).astype(np.float32)
    ad.AnnData(x).write_h5ad(tmp_path / "c.h5ad")
    a = oom.read(tmp_path / "c.h5ad")
    pp.scale(a)
    got = a.X.toarray()
    assert np.isfinite(got).all() and a.var["std"].iloc[0] == 1.0
    np.testing.assert_allclose(got[:, 0], 0.0, atol=1e-6)
    # the other column as numpy scales it (ddof 1)
    col = x[:, 1].astype(np.float64)
    np.testing.assert_allclose(got[:, 1], (col - col.mean()) / col.std(ddof=1), rtol=1e-5)
