"""PBMC 3k fixtures for scanpy interop (lazy and in memory, same X_pca).

Not a conftest.py: tests in other folders import the root conftest as
``conftest`` and a second module of that name would shadow it.
"""

from __future__ import annotations

import warnings

import anndata as ad

import anndataoom as oom

__all__ = ["pbmc_clustered", "pbmc_pair", "pbmc_x_pca"]
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def pbmc_x_pca(pbmc3k_path):
    """X_pca of PBMC 3k computed by scanpy in memory (normalize, log1p, HVG, scale, PCA)."""
    import scanpy as sc

    m = ad.read_h5ad(pbmc3k_path)
    sc.pp.filter_genes(m, min_cells=3)
    sc.pp.normalize_total(m, target_sum=1e4)
    sc.pp.log1p(m)
    sc.pp.highly_variable_genes(m, n_top_genes=2000)
    m = m[:, m.var["highly_variable"]].copy()
    sc.pp.scale(m, max_value=10)
    sc.pp.pca(m, n_comps=30, random_state=0)
    return m.obsm["X_pca"].copy(), {k: np.copy(v) for k, v in m.uns["pca"].items()}


@pytest.fixture
def pbmc_pair(pbmc3k_path, pbmc_x_pca):
    """``(lazy, in_memory)``: PBMC 3k raw counts, both with the same ``obsm['X_pca']``."""
    x_pca, pca = pbmc_x_pca
    lazy = oom.read(pbmc3k_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = ad.read_h5ad(pbmc3k_path)
    for a in (lazy, mem):
        a.obsm["X_pca"] = x_pca.copy()
        a.uns["pca"] = {k: np.copy(v) for k, v in pca.items()}
    yield lazy, mem
    lazy.close()


@pytest.fixture(scope="session")
def pbmc_clustered(pbmc3k_path, pbmc_x_pca):
    """``(lazy, in_memory)`` after neighbors, UMAP and Leiden run by scanpy on each."""
    import scanpy as sc

    x_pca, pca = pbmc_x_pca
    lazy = oom.read(pbmc3k_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = ad.read_h5ad(pbmc3k_path)
    for a in (lazy, mem):
        a.obsm["X_pca"] = x_pca.copy()
        a.uns["pca"] = {k: np.copy(v) for k, v in pca.items()}
        sc.pp.neighbors(a, n_neighbors=15, n_pcs=30, random_state=0)
        sc.tl.umap(a, random_state=0)
        sc.tl.leiden(a, flavor="igraph", n_iterations=2, directed=False, random_state=0)
    return lazy, mem
