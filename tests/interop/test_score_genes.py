"""scanpy's ``score_genes`` / ``score_genes_cell_cycle`` on an AnnDataOOM: streamed, scanpy's scores.

scanpy averages all of X per gene with ``np.nanmean``, which a lazy matrix
answers with a streamed pass instead of a dense copy (the test caps implicit
dense copies at 1 MiB to prove it).
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest
import scanpy as sc

import anndataoom as oom

S_GENES = ["MCM5", "PCNA", "TYMS", "FEN1", "MCM2", "MCM4", "RRM1", "UNG", "GINS2", "MCM6"]
G2M_GENES = ["HMGB2", "CDK1", "NUSAP1", "UBE2C", "BIRC5", "TPX2", "TOP2A", "NDC80", "CKS2"]


@pytest.fixture
def pbmc_pair(pbmc3k_path, monkeypatch):
    lazy, mem = oom.read(pbmc3k_path), ad.read_h5ad(pbmc3k_path)
    for x, mod in ((lazy, oom.pp), (mem, sc.pp)):
        mod.filter_cells(x, min_genes=200)
        mod.filter_genes(x, min_cells=3)
        mod.normalize_total(x, target_sum=1e4)
        mod.log1p(x)
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", str(1 << 20))
    return lazy, mem


@pytest.mark.parametrize("use_raw", [False, True])
def test_score_genes_streams_and_matches_scanpy(pbmc_pair, use_raw):
    lazy, mem = pbmc_pair
    for x in (lazy, mem):
        x.raw = x
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the gene that is not there
            sc.tl.score_genes(x, ["CD3D", "CD3E", "IL7R", "LTB", "NOT_A_GENE"],
                              score_name="t_cells", use_raw=use_raw)
    assert lazy.obs["t_cells"].dtype == mem.obs["t_cells"].dtype == np.float64
    # scanpy's sparse means round to float32; the streamed ones do not
    np.testing.assert_allclose(lazy.obs["t_cells"], mem.obs["t_cells"], atol=1e-6)
    assert isinstance(lazy.X, oom.BackedArray)


def test_score_genes_cell_cycle(pbmc_pair):
    lazy, mem = pbmc_pair
    for x in (lazy, mem):
        sc.tl.score_genes_cell_cycle(x, s_genes=S_GENES, g2m_genes=G2M_GENES)
    for k in ("S_score", "G2M_score"):
        np.testing.assert_allclose(lazy.obs[k], mem.obs[k], atol=1e-6)
    # a cell whose score scanpy rounds to -1.7e-9 and we to 0 may change phase
    same = (lazy.obs["phase"].astype(str) == mem.obs["phase"].astype(str)).mean()
    assert same > 0.999


def test_nanmean_streams_and_skips_stored_nans(tmp_path, monkeypatch):
    import scipy.sparse as sp

    x = np.random.default_rng(0).poisson(1.0, (40, 6)).astype(np.float32)
    ad.AnnData(sp.csr_matrix(x)).write_h5ad(tmp_path / "a.h5ad")
    x0 = x.copy()
    x[3, 2] = np.nan
    ad.AnnData(sp.csr_matrix(x)).write_h5ad(tmp_path / "nan.h5ad")
    a, b = oom.read(tmp_path / "a.h5ad").X, oom.read(tmp_path / "nan.h5ad").X
    np.testing.assert_allclose(np.nanmean(a, axis=0, dtype="float64"),
                               np.nanmean(x0, axis=0, dtype="float64"), rtol=1e-12)
    np.testing.assert_allclose(np.nanmean(b, axis=1), np.nanmean(x, axis=1), rtol=1e-6)
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", "64")
    np.nanmean(a, axis=1)  # streamed: under any cap
    with pytest.raises(oom.InMemoryRequiredError):
        np.nanmean(b, axis=0)  # stored NaNs: numpy's own code on a dense copy
