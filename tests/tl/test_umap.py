"""``oom.tl.umap`` against ``sc.tl.umap`` on the same graph (PBMC 3k and generated blobs)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import anndataoom as oom
from anndataoom.testing import neighbour_preservation

pytest.importorskip("scanpy")
import scanpy as sc  # noqa: E402

from _pbmc_fixtures import pbmc_clustered, pbmc_x_pca  # noqa: E402, F401


def _blobs(n_blobs: int, per: int, seed: int = 0) -> ad.AnnData:
    """Well separated Gaussian blobs with scanpy's kNN graph: one component per blob."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=100.0, size=(n_blobs, 10))
    x = np.concatenate([c + rng.normal(size=(per, 10)) for c in centres]).astype(np.float32)
    a = ad.AnnData(obs={"blob": np.repeat(np.arange(n_blobs), per).astype(str)})
    a.obsm["X_pca"] = x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.neighbors(a, n_neighbors=10, use_rep="X_pca", random_state=0)
    return a


@pytest.fixture
def pbmc(pbmc_clustered):  # noqa: F811
    """In-memory PBMC 3k with scanpy's graph and scanpy's UMAP in ``obsm['X_umap']``."""
    return pbmc_clustered[1].copy()


def test_result_layout_and_quality_match_scanpy(pbmc):
    ref = pbmc.obsm["X_umap"].copy()
    ref_params = dict(pbmc.uns["umap"]["params"])
    oom.tl.umap(pbmc)
    ours = pbmc.obsm["X_umap"]
    assert ours.shape == ref.shape and ours.dtype == ref.dtype and np.isfinite(ours).all()
    assert set(pbmc.uns["umap"]["params"]) == set(ref_params)
    for k in ("a", "b"):
        assert pbmc.uns["umap"]["params"][k] == pytest.approx(ref_params[k], rel=1e-6)
    x = pbmc.obsm["X_pca"]
    theirs, mine = neighbour_preservation(x, ref), neighbour_preservation(x, ours)
    assert mine >= 0.9 * theirs, (mine, theirs)


def test_lazy_object_and_scanpy_plot(pbmc_clustered):  # noqa: F811
    import matplotlib.pyplot as plt

    lazy = pbmc_clustered[0]
    ref = lazy.obsm["X_umap"].copy()
    try:
        oom.tl.umap(lazy, maxiter=50)
        assert lazy.obsm["X_umap"].shape == ref.shape
        sc.pl.umap(lazy, color="leiden", show=False)
        plt.close("all")
    finally:
        lazy.obsm["X_umap"] = ref


def test_params_key_added_and_copy(pbmc):
    out = oom.tl.umap(pbmc, random_state=3, key_added="emb", maxiter=20, copy=True)
    assert "emb" not in pbmc.obsm and "emb" not in pbmc.uns
    assert out.uns["emb"]["params"]["random_state"] == 3
    assert out.obsm["emb"].shape == (pbmc.n_obs, 2)
    oom.tl.umap(pbmc, n_components=3, a=1.0, b=1.0, maxiter=20)
    assert pbmc.obsm["X_umap"].shape == (pbmc.n_obs, 3)
    assert pbmc.uns["umap"]["params"] == {"a": 1.0, "b": 1.0}


@pytest.mark.parametrize("init_pos", ["random", "X_pca", "array", "paga"])
def test_init_variants(pbmc, init_pos):
    if init_pos == "paga":
        sc.tl.paga(pbmc, groups="leiden")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.pl.paga(pbmc, show=False)
    init = pbmc.obsm["X_pca"][:, :2].copy() if init_pos == "array" else init_pos
    oom.tl.umap(pbmc, init_pos=init, maxiter=100)
    emb = pbmc.obsm["X_umap"]
    assert np.isfinite(emb).all() and emb.dtype == np.float32
    assert neighbour_preservation(pbmc.obsm["X_pca"], emb) > 0.05


def test_same_result_for_a_seed_on_any_thread_count(tmp_path):
    a = _blobs(3, 150)
    a.write_h5ad(tmp_path / "g.h5ad")
    code = ("import sys, anndata as ad, numpy as np, anndataoom as oom; a = ad.read_h5ad(sys.argv[1]);"
            "oom.tl.umap(a, maxiter=60, random_state=7); np.save(sys.argv[2], a.obsm['X_umap'])")
    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "RAYON_NUM_THREADS": threads}
        out = tmp_path / f"t{threads}.npy"
        subprocess.run([sys.executable, "-c", code, str(tmp_path / "g.h5ad"), str(out)], env=env, check=True)
        outs.append(np.load(out))
    np.testing.assert_array_equal(outs[0], outs[1])
    oom.tl.umap(a, maxiter=60, random_state=7)
    np.testing.assert_array_equal(a.obsm["X_umap"], outs[0])


@pytest.mark.parametrize("n_blobs", [2, 6])
def test_components_are_laid_out_apart(n_blobs):
    a = _blobs(n_blobs, 60)
    oom.tl.umap(a, maxiter=100)
    emb = a.obsm["X_umap"]
    labels = a.obs["blob"].to_numpy()
    centres = np.array([emb[labels == b].mean(0) for b in np.unique(labels)])
    spread = max(
        np.linalg.norm(emb[labels == b] - c, axis=1).max()
        for b, c in zip(np.unique(labels), centres, strict=True)
    )
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(n_blobs, 1)]
    assert gaps.min() > spread, (gaps.min(), spread)


def _cross_edge_length(a: ad.AnnData, key: str, labels: np.ndarray) -> float:
    g = a.obsp["connectivities"].tocoo()
    cross = labels[g.row] != labels[g.col]
    e = a.obsm[key]
    return float(np.median(np.linalg.norm(e[g.row[cross]] - e[g.col[cross]], axis=1)))


def test_weakly_linked_clusters_stay_together_as_in_scanpy():
    """Two touching blobs (2% of the edges between them) keep those edges as short as scanpy's."""
    rng = np.random.default_rng(1)
    shift = np.r_[4.5, np.zeros(9)]
    x = np.vstack([rng.normal(size=(2000, 10)), rng.normal(size=(500, 10)) + shift])
    labels = np.repeat([0, 1], [2000, 500])
    a = ad.AnnData(obsm={"X_pca": x.astype(np.float32)}, shape=(2500, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.neighbors(a, use_rep="X_pca", random_state=0)
        sc.tl.umap(a, key_added="theirs")
    theirs = _cross_edge_length(a, "theirs", labels)
    for seed in range(3):
        oom.tl.umap(a, random_state=seed, key_added="ours")
        ours = _cross_edge_length(a, "ours", labels)
        # was 2.6–23 against scanpy's 1.7 when each vertex took its edges in row order
        assert ours < 1.3 * theirs, (seed, ours, theirs)


def test_bad_inputs_raise_typed_errors(pbmc):
    bare = ad.AnnData(obs={"c": ["a", "b", "c"]})
    with pytest.raises(ValueError, match="sc.pp.neighbors"):
        oom.tl.umap(bare)
    for kw, match in [({"min_dist": 2.0}, "spread"), ({"spread": 0.0}, "spread"),
                      ({"min_dist": float("nan")}, "min_dist"), ({"init_pos": "nope"}, "init_pos"),
                      ({"method": "rapids"}, "method"), ({"maxiter": -1}, "maxiter"),
                      ({"n_components": 9}, "n_components")]:
        with pytest.raises(ValueError, match=match):
            oom.tl.umap(pbmc, **kw)
    pbmc.obsm["bad"] = np.full((pbmc.n_obs, 2), np.nan)
    with pytest.raises(ValueError, match="NaN"):
        oom.tl.umap(pbmc, init_pos="bad")
    g = sp.csr_matrix(pbmc.obsp["connectivities"], copy=True)
    g.data[0] = np.nan
    pbmc.obsp["connectivities"] = g
    with pytest.raises(ValueError, match="NaN"):
        oom.tl.umap(pbmc)
    assert "X_umap" in pbmc.obsm  # scanpy's result from before is left as it was


def test_negative_graph_index_is_an_error(pbmc):
    # scipy's int32 indices go to Rust without a copy; a negative one must not slip through
    g = sp.csr_matrix(pbmc.obsp["connectivities"], copy=True)
    g.indices[5] = -3
    pbmc.obsp["connectivities"] = g
    with pytest.raises(IndexError, match="out of range"):
        oom.tl.umap(pbmc, init_pos="random")
    with pytest.raises(IndexError, match="out of range"):
        oom.tl.umap(pbmc, init_pos="spectral")
