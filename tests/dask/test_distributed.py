"""``anndataoom.distributed``: the pp pipeline on 2 worker processes equals the local run.

Bit for bit: the workers fold the runs of rows the single-process pass folds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import anndataoom as oom
from anndataoom.testing import gen_h5ad

pytest.importorskip("distributed", reason="dask.distributed is not installed")


def pipeline(path, n_top_genes: int, n_comps: int):
    """QC → normalize → log1p → HVG → scale → PCA, as in the DESIGN benchmark."""
    adata = oom.read(path)
    adata.var["mt"] = adata.var_names.str.startswith("MT-")
    oom.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=(20, 50, 100), inplace=True)
    oom.pp.normalize_total(adata, target_sum=1e4)
    oom.pp.log1p(adata)
    oom.pp.highly_variable_genes(adata, n_top_genes=n_top_genes)
    oom.pp.scale(adata, max_value=10)
    oom.pp.pca(adata, n_comps=n_comps)
    return adata


def assert_same(ours, ref):
    """Bit for bit: the workers fold the runs of rows the single-process pass folds."""
    for frame in ("obs", "var"):
        pd.testing.assert_frame_equal(getattr(ours, frame), getattr(ref, frame),
                                      check_exact=True, obj=frame)
    for key in ("variance", "variance_ratio"):
        np.testing.assert_array_equal(ours.uns["pca"][key], ref.uns["pca"][key], err_msg=key)
    np.testing.assert_array_equal(ours.varm["PCs"], ref.varm["PCs"])
    np.testing.assert_array_equal(ours.obsm["X_pca"], ref.obsm["X_pca"])
    np.testing.assert_array_equal(ours.X[:200].toarray(), ref.X[:200].toarray())


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("dist") / "gen.h5ad"
    gen_h5ad(path, n_obs=500, n_vars=300, density=0.2, seed=7)
    return path


@pytest.mark.parametrize("n_top_genes, n_comps", [(60, 20)])
def test_generated_matches_local(client, generated, n_top_genes, n_comps):
    ref = pipeline(generated, n_top_genes, n_comps)
    with oom.distributed(client):
        ours = pipeline(generated, n_top_genes, n_comps)
    assert_same(ours, ref)


def test_pbmc3k_matches_local(client, pbmc3k_path):
    ref = pipeline(pbmc3k_path, 2000, 50)
    with oom.distributed(client):
        ours = pipeline(pbmc3k_path, 2000, 50)
    assert_same(ours, ref)


def test_seurat_v3_and_batches_match_local(client, generated):
    def hvg(adata):
        oom.pp.highly_variable_genes(adata, flavor="seurat_v3", n_top_genes=50,
                                     batch_key="batch")
        return adata.var

    ref = hvg(oom.read(generated))
    with oom.distributed(client):
        ours = hvg(oom.read(generated))
    pd.testing.assert_frame_equal(ours, ref, check_exact=True)


def test_tasks_run_on_the_workers(client, generated):
    from dask.distributed import get_task_stream

    from anndataoom import _distributed, _oom

    adata = oom.read(generated)
    with oom.distributed(client), get_task_stream(client) as tasks:
        state = _distributed.run_pass(adata.X.matrix, _oom.positive_counts)
    assert len([t for t in tasks.data if "run_kernel" in str(t["key"])]) == 2  # one per thread
    assert state.nrows == adata.n_obs
    assert _distributed._client.get() is None  # the context manager resets


def test_chunked_api_matrices_run_on_the_workers(client, generated):
    """Matrices made by the 0.1.8 ``chunked_*`` API (raw ``_oom`` calls) ship to workers too."""
    from anndataoom import _seed

    def prepared():
        adata = oom.read(generated)
        _seed.chunked_normalize_total(adata, target_sum=1e4)
        _seed.chunked_log1p(adata)
        _seed.chunked_scale(adata, max_value=10)
        return adata

    ref = prepared()
    oom.pp.pca(ref, n_comps=10, layer="scaled", key_added="scaled_pca")
    ours = prepared()
    with oom.distributed(client):
        oom.pp.pca(ours, n_comps=10, layer="scaled", key_added="scaled_pca")
    np.testing.assert_array_equal(ours.obsm["scaled_pca"], ref.obsm["scaled_pca"])
    got = ours.layers["scaled"].to_dask(chunks=120).compute(scheduler=client.get)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(ref.layers["scaled"].to_memory()))


def test_filters_cell_ranger_and_uncentred_pca_match_local(client, generated):
    def run(adata):
        oom.pp.filter_cells(adata, min_genes=40)
        oom.pp.filter_genes(adata, min_cells=5)
        oom.pp.normalize_total(adata, target_sum=1e4, exclude_highly_expressed=True)
        oom.pp.log1p(adata)
        oom.pp.highly_variable_genes(adata, flavor="cell_ranger", n_top_genes=80)
        oom.pp.pca(adata, n_comps=10, zero_center=False)
        return adata

    ref = run(oom.read(generated))
    with oom.distributed(client):
        ours = run(oom.read(generated))
    assert ours.shape == ref.shape
    pd.testing.assert_frame_equal(ours.var, ref.var, check_exact=True)
    np.testing.assert_array_equal(ours.obsm["X_pca"], ref.obsm["X_pca"])
    np.testing.assert_array_equal(ours.varm["PCs"], ref.varm["PCs"])


def test_pearson_hvg_markers_and_wide_pca_match_local(client, tmp_path):
    """The pearson_residuals flavor, t-test markers (grouped moments) and PCA of more than
    10,000 variables (the Krylov solver, which stays in this process)."""
    path = tmp_path / "wide.h5ad"
    gen_h5ad(path, n_obs=240, n_vars=10_200, density=0.02, seed=3)

    def run(adata):
        oom.pp.highly_variable_genes(adata, flavor="pearson_residuals", n_top_genes=100,
                                     batch_key="batch")
        oom.pp.normalize_total(adata, target_sum=1e4)
        oom.pp.log1p(adata)
        oom.tl.rank_genes_groups(adata, "batch", method="t-test", pts=True)
        oom.pp.pca(adata, n_comps=5)
        return adata

    ref = run(oom.read(path))
    with oom.distributed(client):
        ours = run(oom.read(path))
    pd.testing.assert_frame_equal(ours.var, ref.var, check_exact=True)
    for key in ("names", "scores", "pvals", "logfoldchanges"):
        np.testing.assert_array_equal(ours.uns["rank_genes_groups"][key],
                                      ref.uns["rank_genes_groups"][key], err_msg=key)
    pd.testing.assert_frame_equal(ours.uns["rank_genes_groups"]["pts"],
                                  ref.uns["rank_genes_groups"]["pts"], check_exact=True)
    assert ours.uns["pca"]["params"] == ref.uns["pca"]["params"]
    np.testing.assert_array_equal(ours.obsm["X_pca"], ref.obsm["X_pca"])


def test_regress_out_and_combat_match_local(client, generated):
    def run(adata):
        oom.pp.normalize_total(adata, target_sum=1e4)
        oom.pp.log1p(adata)
        oom.pp.regress_out(adata, ["n_counts_sim", "score"])
        oom.pp.combat(adata, key="batch")
        oom.pp.regress_out(adata, "batch")
        return adata

    ref = run(oom.read(generated))
    with oom.distributed(client):
        ours = run(oom.read(generated))
    np.testing.assert_array_equal(np.asarray(ours.X.to_memory()), np.asarray(ref.X.to_memory()))
