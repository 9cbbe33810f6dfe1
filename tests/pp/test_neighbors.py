"""``oom.pp.neighbors`` against scanpy's ``sc.pp.neighbors`` and exact neighbours."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from scipy import sparse

import anndataoom as oom
from _pbmc_fixtures import *  # noqa: F403  (pytest fixtures pbmc_pair, pbmc_x_pca)
from anndataoom import _oom


def _cloud(n: int, d: int = 30, seed: int = 0) -> np.ndarray:
    """Cells along branching continua with noise: a stand-in for X_pca."""
    rng = np.random.default_rng(seed)
    ends = rng.normal(scale=6, size=(6, d))
    a, b = rng.integers(0, 6, n), rng.integers(0, 6, n)
    t = rng.random((n, 1))
    return (ends[a] * t + ends[b] * (1 - t) + rng.normal(size=(n, d))).astype(np.float32)


def _adata(x: np.ndarray) -> ad.AnnData:
    obs = pd.DataFrame(index=[f"c{i}" for i in range(x.shape[0])])
    return ad.AnnData(obs=obs, obsm={"X_pca": x})


def _exact(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's k − 1 nearest other rows (float64 brute force)."""
    x = x.astype(np.float64)
    d2 = (x**2).sum(1)[:, None] + (x**2).sum(1)[None, :] - 2 * x @ x.T
    np.fill_diagonal(d2, np.inf)
    return np.argsort(d2, axis=1, kind="stable")[:, : k - 1]


def _recall(ind: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(a, b)) for a, b in zip(ind[:, 1:], truth, strict=True))
    return hits / truth.size


def _assert_layout_like(ours: ad.AnnData, theirs: ad.AnnData, k: int) -> None:
    assert ours.uns["neighbors"] == theirs.uns["neighbors"]
    for key in ("distances", "connectivities"):
        a, b = ours.obsp[key], theirs.obsp[key]
        assert type(a) is type(b), key
        assert (a.dtype, a.indices.dtype, a.indptr.dtype, a.shape) == (
            b.dtype, b.indices.dtype, b.indptr.dtype, b.shape), key
    d, c = ours.obsp["distances"], ours.obsp["connectivities"]
    assert (np.diff(d.indptr) == k - 1).all()
    assert d.diagonal().sum() == 0 and c.diagonal().sum() == 0
    assert abs(c - c.T).max() == 0
    assert c.has_sorted_indices


def test_pbmc3k_equals_scanpy(pbmc_pair):
    lazy, mem = pbmc_pair
    sc.pp.neighbors(mem, n_neighbors=15, n_pcs=30, random_state=0)
    oom.pp.neighbors(lazy, n_neighbors=15, n_pcs=30, random_state=0)
    _assert_layout_like(lazy, mem, 15)
    d_o, d_s = lazy.obsp["distances"], mem.obsp["distances"]
    # same neighbours in the same (distance) order, same distances
    np.testing.assert_array_equal(d_o.indices, d_s.indices)
    np.testing.assert_allclose(d_o.data, d_s.data, rtol=1e-6)
    c_o, c_s = lazy.obsp["connectivities"], mem.obsp["connectivities"]
    np.testing.assert_array_equal(c_o.indptr, c_s.indptr)
    np.testing.assert_array_equal(c_o.indices, c_s.indices)
    # sklearn's distances (GEMM in float64) and ours (direct, float64) differ
    # in the last bits; umap's sigma bisection (tolerance 1e-5) turns that
    # into ≤ ~1e-4 relative here. On identical kNN input the weights are
    # umap-learn's to the last bit or so: see test_fuzzy_set_equals_umap_learn.
    np.testing.assert_allclose(c_o.data, c_s.data, rtol=2e-4, atol=1e-6)


def test_fuzzy_set_equals_umap_learn():
    from umap.umap_ import fuzzy_simplicial_set

    x = _cloud(2000, seed=10)
    ind, dist = _oom.knn_graph(x, 15)
    d32 = dist.astype(np.float32)
    indptr, indices, data = _oom.umap_connectivities(ind, d32)
    ours = sparse.csr_matrix((data, indices, indptr), shape=(2000, 2000))
    theirs = fuzzy_simplicial_set(
        sparse.coo_matrix((2000, 1)), 15, None, None, knn_indices=ind, knn_dists=d32
    )[0].tocsr()
    theirs.sort_indices()
    np.testing.assert_array_equal(ours.indptr, theirs.indptr)
    np.testing.assert_array_equal(ours.indices, theirs.indices)
    np.testing.assert_allclose(ours.data, theirs.data, rtol=0, atol=1.2e-7)


def test_layout_with_key_added():
    """4,200 cells, ``key_added``: same keys, dtypes and shapes as scanpy's."""
    x = _cloud(4200, d=10, seed=1)
    ours, theirs = _adata(x), _adata(x)
    oom.pp.neighbors(ours, n_neighbors=10, use_rep="X_pca", key_added="nb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.neighbors(theirs, n_neighbors=10, use_rep="X_pca", key_added="nb")
    assert ours.uns["nb"] == theirs.uns["nb"]
    for key in ("nb_distances", "nb_connectivities"):
        a, b = ours.obsp[key], theirs.obsp[key]
        assert (a.dtype, a.indices.dtype, a.shape) == (b.dtype, b.indices.dtype, b.shape)
    # exact search here: at least as close as pynndescent's, row by row
    assert (ours.obsp["nb_distances"].sum(1) <= theirs.obsp["nb_distances"].sum(1) + 1e-4).all()


def test_ivf_recall_and_thread_independence(tmp_path):
    """Forced onto the IVF path: recall@15 ≥ 0.95; same graph on 1 and 2 threads."""
    x = _cloud(6000, seed=2)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, numpy as np; from anndataoom import _oom\n"
        "x = np.load(sys.argv[1]); i, d = _oom.knn_graph(x, 15, exact_max=0, seed=3)\n"
        "np.save(sys.argv[2], i); np.save(sys.argv[3], d)\n"
    )
    out = {}
    for threads in (1, 2):
        env = {**os.environ, "RAYON_NUM_THREADS": str(threads)}
        files = [tmp_path / f"{name}{threads}.npy" for name in ("i", "d")]
        subprocess.run([sys.executable, "-c", script, str(tmp_path / "x.npy"), *map(str, files)],
                       env=env, check=True)
        out[threads] = [np.load(f) for f in files]
    np.testing.assert_array_equal(out[1][0], out[2][0])
    np.testing.assert_array_equal(out[1][1], out[2][1])
    ind = out[2][0]
    assert (ind[:, 0] == np.arange(len(x))).all()
    assert _recall(ind, _exact(x, 15)) >= 0.95


def test_exact_path_equals_brute_force():
    x = _cloud(800, seed=4)
    ind, dist = _oom.knn_graph(x, 12)
    truth = _exact(x, 12)
    np.testing.assert_array_equal(ind[:, 1:], truth)
    x64 = x.astype(np.float64)
    want = np.sqrt(((x64[:, None, :] - x64[truth]) ** 2).sum(-1))
    np.testing.assert_allclose(dist[:, 1:], want, rtol=1e-12)


def test_scanpy_tools_run_on_our_graph(pbmc_pair):
    import matplotlib

    matplotlib.use("Agg")
    lazy, _ = pbmc_pair
    oom.pp.neighbors(lazy, n_neighbors=15, n_pcs=30)
    sc.tl.leiden(lazy, flavor="igraph", n_iterations=2, directed=False, random_state=0)
    assert 4 <= lazy.obs["leiden"].nunique() <= 30
    sc.tl.paga(lazy, groups="leiden")
    assert lazy.uns["paga"]["connectivities"].shape[0] == lazy.obs["leiden"].nunique()
    sc.tl.umap(lazy, random_state=0)
    assert lazy.obsm["X_umap"].shape == (lazy.n_obs, 2)
    assert np.isfinite(lazy.obsm["X_umap"]).all()
    sc.pl.umap(lazy, color="leiden", show=False)


def test_transformer_route_through_scanpy():
    x = _cloud(1500, seed=5)
    ours, theirs = _adata(x), _adata(x)
    sc.pp.neighbors(ours, n_neighbors=10, use_rep="X_pca",
                    transformer=oom.pp.KnnTransformer(n_neighbors=10))
    sc.pp.neighbors(theirs, n_neighbors=10, use_rep="X_pca")
    # scanpy derives the same kNN (self first) and the same connectivities from it
    c_o, c_s = ours.obsp["connectivities"], theirs.obsp["connectivities"]
    np.testing.assert_array_equal(c_o.indices, c_s.indices)
    np.testing.assert_allclose(c_o.data, c_s.data, rtol=2e-4, atol=1e-6)
    t = oom.pp.KnnTransformer(n_neighbors=5).fit(x)
    g = t.transform(x)
    assert g.shape == (1500, 1500) and (np.diff(g.indptr) == 6).all()
    with pytest.raises(NotImplementedError, match="fitted on"):
        t.transform(x[:10])


def test_missing_pca_runs_pca_first_on_a_copy(make_h5ad):
    path, mem = make_h5ad(n_obs=300, n_vars=80, density=0.3, seed=8)
    a = oom.read(path)
    b = oom.pp.neighbors(a, n_neighbors=5, n_pcs=10, copy=True)
    assert "X_pca" not in a.obsm and "distances" not in a.obsp
    assert b.obsm["X_pca"].shape == (300, 10) and "connectivities" in b.obsp
    # scanpy in memory does the same: PCA first (it says so), then the graph on it
    with pytest.warns(UserWarning, match="dimensions of `.X`"):
        sc.pp.neighbors(mem, n_neighbors=5, n_pcs=10)
    assert b.uns["neighbors"] == mem.uns["neighbors"]
    a.close()


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(n_neighbors=1), ValueError, "at least 2"),
        (dict(use_rep="X_nope"), ValueError, "X_nope"),  # as scanpy
        (dict(n_pcs=40), ValueError, "n_pcs"),
        (dict(metric="cosine"), NotImplementedError, "sc.pp.neighbors"),
        (dict(method="gauss"), NotImplementedError, "method='gauss'"),
        (dict(knn=False), NotImplementedError, "knn=False"),
        (dict(method="bogus"), ValueError, "needs to be one of"),
        (dict(metric="bogus"), ValueError, "unknown metric 'bogus'"),
        (dict(random_state="seed"), TypeError, "random_state"),
    ],
)
def test_bad_inputs(kwargs, exc, match):
    a = _adata(_cloud(500, seed=6))
    with pytest.raises(exc, match=match):
        oom.pp.neighbors(a, **{"use_rep": "X_pca", **kwargs})
    assert "neighbors" not in a.uns and "distances" not in a.obsp


def test_more_neighbors_than_cells_adjusted_as_scanpy():
    x = _cloud(40, seed=8)
    a, mem = _adata(x), _adata(x)
    with pytest.warns(UserWarning, match="adjusting to `n_neighbors = 21`"):
        oom.pp.neighbors(a, n_neighbors=60, use_rep="X_pca")
    sc.pp.neighbors(mem, n_neighbors=60, use_rep="X_pca")
    assert a.uns["neighbors"]["params"]["n_neighbors"] == 21
    assert a.uns["neighbors"]["params"] == mem.uns["neighbors"]["params"]
    d_o, d_s = a.obsp["distances"], mem.obsp["distances"]
    np.testing.assert_array_equal(d_o.indices, d_s.indices)
    np.testing.assert_allclose(d_o.data, d_s.data, rtol=1e-6)


def test_nan_in_representation():
    x = _cloud(300, seed=7)
    x[5, 3] = np.nan
    a = _adata(x)
    with pytest.raises(ValueError, match="non-finite"):
        oom.pp.neighbors(a, use_rep="X_pca")
    assert "distances" not in a.obsp


def test_lazy_x_is_never_loaded(make_h5ad):
    path, _ = make_h5ad(n_obs=100, n_vars=40, density=0.3, seed=9)
    a = oom.read(path)
    with pytest.raises(oom.InMemoryRequiredError):
        oom.pp.neighbors(a, use_rep="X")
    with pytest.raises(oom.InMemoryRequiredError):  # scanpy would use X itself (≤ 50 genes)
        oom.pp.neighbors(a)
    a.close()
