"""filter_cells / filter_genes vs scanpy: columns written, lazy subset, X."""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc

from anndataoom import pp
from anndataoom import read as oom_read
from anndataoom.testing import assert_frame_close, assert_x_close

CELLS = [dict(min_counts=50), dict(min_genes=20), dict(max_counts=120), dict(max_genes=40)]
GENES = [dict(min_counts=15), dict(min_cells=10), dict(max_counts=80), dict(max_cells=60)]


@pytest.mark.parametrize("name", ["csr_f32", "dense_i32", "csc_f64"])
@pytest.mark.parametrize("kw", CELLS)
def test_filter_cells(pair, gen_files, name, kw):
    a, b = pair(gen_files[name])
    pp.filter_cells(a, **kw)
    sc.pp.filter_cells(b, **kw)
    assert a.shape == b.shape
    assert_frame_close(a.obs, b.obs, rtol=0)
    assert_x_close(a.X, b.X, rtol=0, sparse=name != "dense_i32")


@pytest.mark.parametrize("name", ["csr_f32", "dense_i32", "csc_f64"])
@pytest.mark.parametrize("kw", GENES)
def test_filter_genes(pair, gen_files, name, kw):
    a, b = pair(gen_files[name])
    pp.filter_genes(a, **kw)
    sc.pp.filter_genes(b, **kw)
    assert a.shape == b.shape
    assert_frame_close(a.var, b.var, rtol=0)
    assert_x_close(a.X, b.X, rtol=0)


def test_filter_pbmc_chain(pair, pbmc3k_path):
    a, b = pair(pbmc3k_path)
    for f, kw in [(pp.filter_cells, dict(min_genes=200)), (pp.filter_genes, dict(min_cells=3))]:
        f(a, **kw)
        getattr(sc.pp, f.__name__)(b, **kw)
    assert a.shape == b.shape
    assert_frame_close(a.obs, b.obs, rtol=0)
    assert_frame_close(a.var, b.var, rtol=0)


def test_filter_not_inplace_and_copy(pair, gen_files):
    a, b = pair(gen_files["csr_f32"])
    subset, number = pp.filter_cells(a, min_genes=20, inplace=False)
    s2, n2 = sc.pp.filter_cells(b, min_genes=20, inplace=False)
    np.testing.assert_array_equal(subset, s2)
    np.testing.assert_array_equal(number, n2)
    assert a.shape == b.shape
    c = pp.filter_genes(a, min_cells=10, copy=True)
    assert c.n_vars < a.n_vars and "n_cells" not in a.var


def test_filter_one_option(pair, gen_files):
    a, _ = pair(gen_files["csr_f32"])
    with pytest.raises(ValueError, match="Only provide one"):
        pp.filter_cells(a, min_genes=1, min_counts=1)
    with pytest.raises(ValueError, match="Only provide one"):
        pp.filter_genes(a)


def _record_positive_passes(monkeypatch) -> list[int]:
    """Rows of every matrix ``positive_counts`` reads from now on."""
    from anndataoom import _oom

    seen: list[int] = []
    real = _oom.positive_counts

    def spy(m):
        seen.append(int(m.shape[0]))
        return real(m)

    monkeypatch.setattr(_oom, "positive_counts", spy)
    return seen


def _qc_filter(mod, adata, genes_kw):
    """Run QC → filter_cells → filter_genes with ``mod`` (ours or scanpy's)."""
    mod.calculate_qc_metrics(adata, percent_top=None, log1p=False, inplace=True)
    mod.filter_cells(adata, min_genes=60)
    mod.filter_genes(adata, **genes_kw)


@pytest.mark.parametrize("name", ["csr_f32", "dense_i32", "csc_f64"])
@pytest.mark.parametrize("genes_kw", [dict(min_cells=65), dict(min_counts=300)])
def test_filters_after_qc_of_counts_read_only_removed_cells(pair, gen_files, monkeypatch,
                                                          name, genes_kw):
    a, b = pair(gen_files[name])
    seen = _record_positive_passes(monkeypatch)
    _qc_filter(pp, a, genes_kw)
    _qc_filter(sc.pp, b, genes_kw)
    assert 0 < a.n_obs < 400 and 0 < a.n_vars < 600, "the thresholds must filter"
    assert seen == [400 - a.n_obs], "only the removed cells are read, once"
    pp.normalize_total(a, target_sum=1e4)
    sc.pp.normalize_total(b, target_sum=1e4)
    # the removed genes are common ones (hundreds of cells): their entries are not known
    assert seen == [400 - a.n_obs, a.n_obs], "normalize_total reads the data once"
    assert_frame_close(a.obs, b.obs, rtol=0)
    assert_frame_close(a.var, b.var, rtol=0)
    assert_x_close(a.X, b.X, rtol=0, sparse=name != "dense_i32")


@pytest.mark.parametrize("shift", [0.5, -3.0])
def test_filters_after_qc_of_non_counts_read_the_matrix(pair, gen_files, tmp_path, monkeypatch,
                                                       shift):
    # Fractions or negatives: QC's non-zero counts are not the positive ones
    # and float sums depend on their order, so the filters read the data.
    import anndata as ad

    src = ad.read_h5ad(gen_files["csr_f32"])
    src.X.data = src.X.data + np.float32(shift)
    path = tmp_path / "shifted.h5ad"
    src.write_h5ad(path)
    a, b = pair(path)
    seen = _record_positive_passes(monkeypatch)
    for mod in (pp, sc.pp):
        adata = a if mod is pp else b
        mod.calculate_qc_metrics(adata, percent_top=None, log1p=False, inplace=True)
        mod.filter_cells(adata, min_genes=60)
        mod.filter_genes(adata, min_cells=65)
    assert seen == [400, a.n_obs]
    assert a.shape == b.shape
    assert_frame_close(a.obs, b.obs, rtol=0)
    assert_frame_close(a.var, b.var, rtol=0)


@pytest.mark.parametrize("dropped_cells_genes", [slice(40, 43), slice(0, 3)])
def test_normalize_after_removing_rare_genes(tmp_path, monkeypatch, dropped_cells_genes):
    # The README's filters on counts: genes seen in fewer than 3 cells go, and
    # with every entry of such genes known from QC the size factors need no pass.
    # Unless a removed gene's first entries (those QC keeps) were in cells
    # filter_cells removed: then its other entries are unknown and normalize reads.
    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(5)
    n_obs, n_vars = 500, 300
    counts = rng.poisson(rng.uniform(0.3, 3.0, size=n_vars), size=(n_obs, n_vars))
    counts[:, :40] = 0
    for j in range(40):  # rare genes: 0-4 cells, some only in cells that filter_cells drops
        rows = rng.choice(n_obs, size=j % 5, replace=False)
        counts[rows, j] = rng.integers(1, 9, size=len(rows))
    counts[:20, 40:] = 0  # cells with few genes
    counts[:20, dropped_cells_genes] = 1
    path = tmp_path / "rare.h5ad"
    ad.AnnData(sp.csr_matrix(counts.astype(np.float32))).write_h5ad(path)
    a, b = oom_read(path), ad.read_h5ad(path)
    seen = _record_positive_passes(monkeypatch)
    for mod, adata in ((pp, a), (sc.pp, b)):
        mod.calculate_qc_metrics(adata, percent_top=None, log1p=False, inplace=True)
        mod.filter_cells(adata, min_genes=10)
        mod.filter_genes(adata, min_cells=3)
        mod.normalize_total(adata, target_sum=1e4)
    assert a.n_obs == n_obs - 20 and 0 < 300 - a.n_vars <= 40
    rare_first_in_dropped = dropped_cells_genes.start == 0
    assert seen == ([20, a.n_obs] if rare_first_in_dropped else [20])
    assert_frame_close(a.obs, b.obs, rtol=0)
    assert_frame_close(a.var, b.var, rtol=0)
    assert_x_close(a.X, b.X, rtol=0)
    a.close()


def test_a_file_without_x_says_so(tmp_path):
    import warnings

    import anndata as ad

    mem = ad.AnnData(np.ones((20, 5), np.float32))
    mem.layers["counts"] = mem.X.copy()
    mem.X = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem.write_h5ad(tmp_path / "nox.h5ad")
    a = oom_read(tmp_path / "nox.h5ad")
    for step in (lambda: pp.calculate_qc_metrics(a), lambda: pp.filter_cells(a, min_genes=1),
                 lambda: pp.normalize_total(a), lambda: pp.highly_variable_genes(a),
                 lambda: pp.pca(a)):
        with pytest.raises(ValueError, match="adata.X is None"):
            step()
    pp.normalize_total(a, layer="counts", target_sum=10)
    np.testing.assert_allclose(a.layers["counts"].sum(axis=1), 10)
