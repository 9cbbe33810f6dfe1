"""oom.tl.leiden vs scanpy's sc.tl.leiden(flavor="igraph") on the same graph:
result layout, modularity (scored by igraph), planted partitions, determinism,
restrict_to, disconnected graphs and bad inputs."""

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
import scipy.sparse as sp
from natsort import natsorted
from scanpy._utils import get_igraph_from_adjacency
from sklearn.metrics import adjusted_rand_score

import anndataoom as oom
from _pbmc_fixtures import pbmc_pair, pbmc_x_pca  # noqa: F401  (pytest fixtures)


@pytest.fixture(scope="module")
def pbmc_graph(pbmc_x_pca):  # noqa: F811
    """An obs-only AnnData of PBMC 3k with scanpy's kNN graph of its X_pca."""
    x_pca, _ = pbmc_x_pca
    a = ad.AnnData(obs=pd.DataFrame(index=[f"c{i}" for i in range(len(x_pca))]))
    a.obsm["X_pca"] = x_pca.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.neighbors(a, n_neighbors=15, use_rep="X_pca", random_state=0)
    return a


def scanpy_leiden(a: ad.AnnData, **kw) -> ad.AnnData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sc.tl.leiden(a, flavor="igraph", n_iterations=2, directed=False, copy=True, **kw)


def igraph_modularity(adj, labels, resolution: float, *, weights: bool = True) -> float:
    g = get_igraph_from_adjacency(adj, directed=False)
    return g.modularity(
        pd.Categorical(labels).codes.tolist(), weights="weight" if weights else None, resolution=resolution
    )


def sbm(sizes, p_in, p_out, seed=0):
    """Symmetric float32 CSR of a stochastic block model and its planted labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    same = labels[:, None] == labels[None, :]
    upper = np.triu(rng.random((len(labels), len(labels))) < np.where(same, p_in, p_out), 1)
    w = np.triu(rng.uniform(0.5, 1.0, upper.shape), 1) * upper
    return sp.csr_matrix((w + w.T).astype(np.float32)), labels


def graph_adata(adj) -> ad.AnnData:
    a = ad.AnnData(obs=pd.DataFrame(index=[f"c{i}" for i in range(adj.shape[0])]))
    a.obsp["connectivities"] = adj
    a.uns["neighbors"] = {"connectivities_key": "connectivities", "params": {}}
    return a


def test_result_layout_like_scanpy(pbmc_graph):
    ours = oom.tl.leiden(pbmc_graph, copy=True)
    theirs = scanpy_leiden(pbmc_graph)
    assert "leiden" not in pbmc_graph.obs
    got, want = ours.obs["leiden"], theirs.obs["leiden"]
    assert isinstance(got.dtype, pd.CategoricalDtype)
    assert got.cat.categories.dtype == want.cat.categories.dtype
    assert list(got.cat.categories) == natsorted(got.cat.categories)
    assert list(got.cat.categories) == [str(i) for i in range(len(got.cat.categories))]
    assert ours.uns["leiden"] == {"params": {"resolution": 1, "random_state": 0, "n_iterations": 2}}
    assert ours.uns["leiden"].keys() == theirs.uns["leiden"].keys()
    assert ours.uns["leiden"]["params"].keys() == theirs.uns["leiden"]["params"].keys()
    # '0' is the largest cluster, then by decreasing size.
    sizes = got.value_counts(sort=False).to_numpy()
    assert (np.diff(sizes) <= 0).all()
    assert oom.tl.leiden(pbmc_graph, key_added="mine", copy=True).obs["mine"].equals(got.rename("mine"))


@pytest.mark.parametrize("resolution", [1.0, 0.5])
def test_modularity_matches_igraph_on_pbmc(pbmc_graph, resolution):
    adj = pbmc_graph.obsp["connectivities"]
    ours = oom.tl.leiden(pbmc_graph, resolution=resolution, copy=True).obs["leiden"]
    theirs = scanpy_leiden(pbmc_graph, resolution=resolution).obs["leiden"]
    q_ours = igraph_modularity(adj, ours, resolution)
    q_theirs = igraph_modularity(adj, theirs, resolution)
    assert q_ours >= q_theirs - 0.005, (q_ours, q_theirs)
    n_ours, n_theirs = ours.nunique(), theirs.nunique()
    assert abs(n_ours - n_theirs) <= max(2, n_theirs // 3), (n_ours, n_theirs)
    assert adjusted_rand_score(ours, theirs) > 0.6


def test_unweighted_and_cpm_match_igraph_quality(pbmc_graph):
    adj = pbmc_graph.obsp["connectivities"]
    ours = oom.tl.leiden(pbmc_graph, use_weights=False, copy=True).obs["leiden"]
    theirs = scanpy_leiden(pbmc_graph, use_weights=False).obs["leiden"]
    q = [igraph_modularity(adj, x, 1.0, weights=False) for x in (ours, theirs)]
    assert q[0] >= q[1] - 0.005, q
    # CPM at γ = 0.05: igraph's quality of the same objective.
    kw = {"resolution": 0.05, "objective_function": "CPM"}
    ours = oom.tl.leiden(pbmc_graph, copy=True, **kw).obs["leiden"]
    theirs = scanpy_leiden(pbmc_graph, **kw).obs["leiden"]

    def cpm(labels):
        codes = pd.Categorical(labels).codes
        inside = adj.multiply(codes[:, None] == codes[None, :]).sum() / 2
        sizes = np.bincount(codes)
        return inside - 0.05 * (sizes * (sizes - 1) / 2).sum()

    assert cpm(ours) >= cpm(theirs) * 0.99 - 1e-9, (cpm(ours), cpm(theirs))


def test_planted_blocks_recovered_exactly():
    adj, planted = sbm([80, 60, 50, 40, 30], 0.3, 0.01, seed=1)
    a = graph_adata(adj)
    oom.tl.leiden(a)
    assert adjusted_rand_score(planted, a.obs["leiden"]) == 1.0
    # Sizes order the labels: the 80-node block is '0'.
    assert (a.obs["leiden"].to_numpy()[:80] == "0").all()


def test_same_seed_same_labels_any_thread_count(tmp_path):
    adj, _ = sbm([60] * 6, 0.12, 0.03, seed=2)
    a = graph_adata(adj)
    first = oom.tl.leiden(a, random_state=5, copy=True).obs["leiden"]
    assert first.equals(oom.tl.leiden(a, random_state=5, copy=True).obs["leiden"])
    path = tmp_path / "g.npz"
    sp.save_npz(path, adj)
    code = (
        "import sys, numpy as np, scipy.sparse as sp; from anndataoom import _oom\n"
        f"g = sp.load_npz({str(path)!r})\n"
        "m, _, _ = _oom.leiden(g.shape[0], g.indptr.astype(np.int64), g.indices, g.data, 1.0,"
        " 'modularity', 2, 5)\n"
        "sys.stdout.write(','.join(map(str, m)))\n"
    )
    env = {**os.environ, "RAYON_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split(",") == list(first.to_numpy())


def test_restrict_to_like_scanpy(pbmc_graph):
    a = pbmc_graph.copy()
    oom.tl.leiden(a, resolution=0.5)
    big = a.obs["leiden"].cat.categories[:2].tolist()
    ours = oom.tl.leiden(a, restrict_to=("leiden", big), copy=True)
    theirs = scanpy_leiden(a, restrict_to=("leiden", big))
    got, want = ours.obs["leiden_R"], theirs.obs["leiden_R"]
    assert isinstance(got.dtype, pd.CategoricalDtype)
    inside = a.obs["leiden"].isin(big).to_numpy()
    assert (got[~inside].astype(str) == a.obs["leiden"][~inside].astype(str)).all()
    prefix = "-".join(big) + ","
    assert got[inside].astype(str).str.startswith(prefix).all()
    sub = a.obsp["connectivities"][inside][:, inside]
    q = [igraph_modularity(sub, x[inside].astype(str), 1.0) for x in (got, want)]
    assert q[0] >= q[1] - 0.005, q
    only_in_want = set(want.cat.categories) - set(got.cat.categories)
    assert only_in_want <= {c for c in want.cat.categories if c.startswith(prefix)}


def test_disconnected_graph():
    left, _ = sbm([40, 40], 0.3, 0.01, seed=3)
    right, _ = sbm([30, 30], 0.3, 0.01, seed=4)
    adj = sp.block_diag([left, right, sp.csr_matrix((5, 5), dtype=np.float32)], format="csr")
    a = graph_adata(adj)
    oom.tl.leiden(a)
    labels = a.obs["leiden"].to_numpy()
    assert set(labels[:80]).isdisjoint(labels[80:140])
    assert len(set(labels[140:])) == 5  # isolated nodes are singletons
    q_theirs = igraph_modularity(adj, scanpy_leiden(a).obs["leiden"], 1.0)
    assert igraph_modularity(adj, labels, 1.0) >= q_theirs - 0.005


def test_asymmetric_graph_is_a_plus_a_transpose():
    adj, planted = sbm([50, 50, 50], 0.3, 0.02, seed=5)
    upper = sp.triu(adj, format="csr")  # each edge stored once: scanpy's igraph sees the same graph
    a = graph_adata(upper)
    sym = oom.tl.leiden(graph_adata(adj), copy=True).obs["leiden"]
    oom.tl.leiden(a)
    assert adjusted_rand_score(planted, a.obs["leiden"]) == 1.0
    assert a.obs["leiden"].equals(sym)


def test_works_on_anndataoom(pbmc_pair):  # noqa: F811
    lazy, _ = pbmc_pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.neighbors(lazy, n_neighbors=15, use_rep="X_pca", random_state=0)
    oom.tl.leiden(lazy)
    assert isinstance(lazy.obs["leiden"].dtype, pd.CategoricalDtype)
    assert lazy.obs["leiden"].nunique() > 3


def _bad(a: ad.AnnData, exc, match: str, **kw):
    before = a.obs.columns.tolist()
    with pytest.raises(exc, match=match):
        oom.tl.leiden(a, **kw)
    assert a.obs.columns.tolist() == before


def test_bad_inputs_are_typed_errors():
    adj, _ = sbm([20, 20], 0.3, 0.05)
    a = graph_adata(adj)
    no_graph = ad.AnnData(obs=pd.DataFrame(index=["a", "b"]))
    with pytest.raises(KeyError):  # what sc.tl.leiden raises too
        scanpy_leiden(no_graph)
    _bad(no_graph, KeyError, "neighbors")
    _bad(a, ValueError, "square", adjacency=sp.csr_matrix((40, 30), dtype=np.float32))
    neg = adj.copy()
    neg.data[3] = -1
    _bad(a, ValueError, "negative", adjacency=neg)
    nan = adj.copy()
    nan.data[3] = np.nan
    _bad(a, ValueError, "non-finite", adjacency=nan)
    out_of_range = adj.tocsr(copy=True)
    out_of_range.indices[5] = -3
    _bad(a, IndexError, "out of range", adjacency=out_of_range)
    a.obs["half"] = pd.Categorical(np.repeat(["x", "y"], 20))
    _bad(a, IndexError, "out of range", adjacency=out_of_range, restrict_to=("half", ["x"]))
    coo = adj.tocoo(copy=True)
    coo.col[2] = 40
    _bad(a, IndexError, "out of range", adjacency=coo)
    _bad(a, ValueError, "resolution", resolution=-0.5)
    _bad(a, ValueError, "sc.tl.leiden", directed=True)
    _bad(a, ValueError, "sc.tl.leiden", partition_type=object)
    _bad(a, ValueError, "sc.tl.leiden", flavor="leidenalg")
    _bad(a, ValueError, "sc.tl.leiden", initial_membership=[0] * 40)
    _bad(a, ValueError, "objective_function", objective_function="surprise")
    _bad(a, TypeError, "random_state", random_state="seed")
    _bad(a, TypeError, "n_iterations must be an integer", n_iterations=2.5)
    _bad(a, TypeError, "sparse", adjacency=[[0, 1], [1, 0]])
    dense = oom.tl.leiden(a, adjacency=adj.toarray(), copy=True).obs["leiden"]
    assert dense.equals(oom.tl.leiden(a, copy=True).obs["leiden"])
