"""anndataoom 0.1.8's probed omicverse table, row by row, on our AnnDataOOM.

Each of the 22 ``ov.pp`` functions runs on the rust backend
(``ov.read(path, backend="rust")``) and on omicverse's in-memory backend
(``ov.read(path)``) from the same PBMC 3k file.  Every row checks that
it runs, that the object is still out of core (an AnnDataOOM with a lazy
X) and that the result equals the in-memory one — or, for the embeddings
and clusterings, whose random initialisation and floating-point paths
differ between any two inputs that are not bit-identical, a stated
invariant (neighbourhood preservation, cluster agreement).

Rows whose optional package is not installed (``louvain``, ``pymde``)
are skipped with that reason; the three slowest rows are ``slow`` (see SLOW).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

ov = pytest.importorskip(
    "omicverse",
    reason="omicverse is not installed: install the optional extra `anndataoom[omicverse]`",
)
import anndataoom  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from _ov_pipeline import QC_TRESH  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")
EMB = "scaled|original|X_pca"


def _q(fn, *a, **kw):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


def _dense(x) -> np.ndarray:
    x = x.to_memory() if hasattr(x, "to_memory") else x
    return np.asarray(x.toarray() if sp.issparse(x) else x)


def _out_of_core(a) -> None:
    assert isinstance(a, anndataoom.AnnDataOOM)
    assert isinstance(a.X, anndataoom.BackedArray)


def _knn(x: np.ndarray, k: int = 15) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean fraction of shared neighbours per row of two kNN index arrays."""
    return float(np.mean([len(np.intersect1d(r, s)) / len(r) for r, s in zip(a, b, strict=True)]))


def _ari(a, b) -> float:
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(np.asarray(a), np.asarray(b))


# -- stages, built once per module (each row works on copies) --------------------------


@pytest.fixture(scope="module")
def raw(pbmc3k_path):
    return _q(ov.read, str(pbmc3k_path), backend="rust"), _q(ov.read, str(pbmc3k_path))


@pytest.fixture(scope="module")
def qcd(raw):
    return tuple(_q(ov.pp.qc, a.copy(), tresh=QC_TRESH, doublets=False) for a in raw)


@pytest.fixture(scope="module")
def pre(qcd):
    return tuple(_q(ov.pp.preprocess, a.copy(), mode="shiftlog|pearson", n_HVGs=2000)
                 for a in qcd)


@pytest.fixture(scope="module")
def emb(pre):
    """HVG subset (raw kept) → scale → pca → neighbors, as omicverse's tutorial."""
    out = []
    for a in pre:
        a = a.copy()
        a.raw = a
        a = a[:, a.var.highly_variable_features.to_numpy()]
        if not isinstance(a, anndataoom.AnnDataOOM):
            a = a.copy()
        _q(ov.pp.scale, a)
        _q(ov.pp.pca, a, layer="scaled", n_pcs=50)
        _q(ov.pp.neighbors, a, n_neighbors=15, n_pcs=50, use_rep=EMB)
        out.append(a)
    return tuple(out)


def _copies(pair):
    return tuple(a.copy() for a in pair)


# -- rows ---------------------------------------------------------------------------------


def row_qc(s):
    oom, mem = s["qcd"]
    assert list(oom.obs_names) == list(mem.obs_names)
    for c in ("nUMIs", "detected_genes"):
        np.testing.assert_array_equal(oom.obs[c].to_numpy(), mem.obs[c].to_numpy())
    np.testing.assert_allclose(oom.obs["mito_perc"], mem.obs["mito_perc"], atol=1e-6)
    return oom


def row_preprocess(s):
    oom, mem = s["pre"]
    np.testing.assert_array_equal(oom.var["highly_variable_features"].to_numpy(),
                                  mem.var["highly_variable_features"].to_numpy())
    cols = [oom.var_names.get_loc(g) for g in ("CST3", "NKG7", "LYZ")]
    np.testing.assert_allclose(_dense(oom.X[:, cols]), _dense(mem.X[:, cols]), rtol=1e-5,
                               atol=1e-5)
    return oom


def _same_columns(oom, mem, rtol=1e-5, n=200):
    cols = np.sort(np.random.default_rng(0).choice(oom.n_vars, n, replace=False))
    np.testing.assert_allclose(_dense(oom.X[:, cols]), _dense(mem.X[:, cols]), rtol=rtol,
                               atol=rtol)


def row_normalize_total(s):
    oom, mem = _copies(s["qcd"])
    for a in (oom, mem):
        _q(ov.pp.normalize_total, a, target_sum=1e4)
    _same_columns(oom, mem)
    return oom


def row_log1p(s):
    oom, mem = _copies(s["qcd"])
    for a in (oom, mem):
        _q(ov.pp.normalize_total, a, target_sum=1e4)
        _q(ov.pp.log1p, a)
    _same_columns(oom, mem)
    return oom


def row_identify_robust_genes(s):
    if not hasattr(anndataoom.BackedArray, "getnnz"):
        pytest.skip("omicverse's sparse branch calls X.getnnz(axis=0) (issue 14, part A)")
    oom, mem = _copies(s["qcd"])
    for a in (oom, mem):
        _q(ov.pp.identify_robust_genes, a)
    assert list(oom.var_names) == list(mem.var_names)
    np.testing.assert_array_equal(oom.var["robust"].to_numpy(), mem.var["robust"].to_numpy())
    np.testing.assert_array_equal(oom.var["n_cells"].to_numpy(), mem.var["n_cells"].to_numpy())
    return oom


def row_scale(s):
    oom, mem = s["emb"]
    assert isinstance(oom.layers["scaled"], anndataoom.ScaledBackedArray)
    cols = np.arange(0, oom.n_vars, 10)
    np.testing.assert_allclose(_dense(oom.layers["scaled"][:, cols]),
                               _dense(mem.layers["scaled"])[:, cols], rtol=1e-4, atol=1e-4)
    return oom


def _abs_cos(a, b):
    a = a / np.linalg.norm(a, axis=0)
    b = b / np.linalg.norm(b, axis=0)
    return np.abs(np.sum(a * b, axis=0))


def row_pca(s):
    oom, mem = s["emb"]
    cos = _abs_cos(oom.obsm["X_pca"].astype(float), mem.obsm["X_pca"].astype(float))
    assert cos.min() >= 0.999, cos
    return oom


def row_neighbors(s):
    # Same PCs (|cos| ≥ 0.999) give nearly the same kNN graph; pynndescent's
    # approximate search makes exact equality of the graph meaningless.
    oom, mem = s["emb"]
    a, b = (m.obsp["distances"].tocsr() for m in (oom, mem))
    nn = [np.split(m.indices, m.indptr[1:-1]) for m in (a, b)]
    same = np.mean([len(np.intersect1d(x, y)) / max(len(y), 1) for x, y in zip(*nn, strict=True)])
    assert same >= 0.9, same
    return oom


def _embedding_row(s, fn, key, **kw):
    """Both backends: ``fn`` runs, and keeps the PCA neighbourhoods as well (±10%)."""
    res = []
    for a in _copies(s["emb"]):
        _q(fn, a, **kw)
        e = np.asarray(a.obsm[key])
        assert e.shape == (a.n_obs, 2) and np.isfinite(e).all()
        res.append((a, _overlap(_knn(e), _knn(np.asarray(a.obsm[EMB])))))
    (oom, ours), (_, theirs) = res
    assert ours >= 0.9 * theirs, (ours, theirs)
    return oom


def row_umap(s):
    return _embedding_row(s, ov.pp.umap, "X_umap")


def row_tsne(s):
    return _embedding_row(s, ov.pp.tsne, "X_tsne", use_rep=EMB)


def row_mde(s):
    pytest.importorskip("pymde", reason="ov.pp.mde needs pymde (not in the omicverse extra)")
    return _embedding_row(s, ov.pp.mde, "X_mde", use_rep=EMB)


def row_sude(s):
    return _embedding_row(s, ov.pp.sude, "X_sude", use_rep=EMB)


def _cluster_row(s, fn, key):
    # Community detection on two nearly equal graphs: agreement, not identity.
    oom, mem = _copies(s["emb"])
    for a in (oom, mem):
        _q(fn, a)
    assert oom.obs[key].nunique() > 3
    assert _ari(oom.obs[key], mem.obs[key]) >= 0.6
    return oom


def row_leiden(s):
    return _cluster_row(s, ov.pp.leiden, "leiden")


def row_louvain(s):
    pytest.importorskip("louvain", reason="ov.pp.louvain needs the louvain package "
                                          "(not in the omicverse extra)")
    return _cluster_row(s, ov.pp.louvain, "louvain")


def row_highly_variable_genes(s):
    oom, mem = _copies(s["pre"])
    for a in (oom, mem):
        _q(ov.pp.highly_variable_genes, a, flavor="seurat", n_top_genes=2000)
    np.testing.assert_array_equal(oom.var["highly_variable"].to_numpy(),
                                  mem.var["highly_variable"].to_numpy())
    return oom


def row_highly_variable_features(s):
    oom, mem = _copies(s["pre"])
    for a in (oom, mem):
        _q(ov.pp.highly_variable_features, a, flavor="pegasus", n_top=2000)
    a = oom.var["highly_variable_features"].to_numpy().astype(bool)
    b = mem.var["highly_variable_features"].to_numpy().astype(bool)
    np.testing.assert_allclose(oom.var["var"], mem.var["var"], rtol=1e-5, atol=1e-8)
    assert (a & b).sum() >= 1990  # only exact rank ties may differ
    return oom


def row_normalize_pearson_residuals(s):
    oom, mem = _copies(s["qcd"])
    for a in (oom, mem):
        _q(ov.pp.normalize_pearson_residuals, a)
    _same_columns(oom, mem)
    return oom


def row_regress(s):
    oom, mem = s["pre"]
    keep = oom.var.highly_variable_features.to_numpy()
    oom, mem = oom[:, keep], mem[:, keep].copy()
    for a in (oom, mem):
        _q(ov.pp.regress, a)
    np.testing.assert_allclose(_dense(oom.layers["regressed"][:, :200]),
                               _dense(mem.layers["regressed"])[:, :200], rtol=1e-3, atol=1e-4)
    return oom


def _filter_row(s, fn, names: str, **kw):
    oom, mem = _copies(s["raw"])
    for a in (oom, mem):
        _q(fn, a, **kw)
    assert len(getattr(oom, names)) < len(getattr(s["raw"][0], names))
    assert list(getattr(oom, names)) == list(getattr(mem, names))
    return oom


def row_filter_cells(s):
    return _filter_row(s, ov.pp.filter_cells, "obs_names", min_genes=700)


def row_filter_genes(s):
    return _filter_row(s, ov.pp.filter_genes, "var_names", min_cells=3)


def row_scrublet(s):
    oom, mem = _copies(s["qcd"])
    for a in (oom, mem):
        _q(ov.pp.scrublet, a)
    assert oom.obs["predicted_doublet"].dtype == bool
    # omicverse's OOM branch normalises over the HVGs only: scores agree closely
    assert np.corrcoef(oom.obs["doublet_score"], mem.obs["doublet_score"])[0, 1] > 0.99
    return oom


def row_score_genes_cell_cycle(s):
    oom, mem = _copies(s["emb"])
    for a in (oom, mem):
        _q(ov.pp.score_genes_cell_cycle, a, species="human")
    for c in ("S_score", "G2M_score"):
        np.testing.assert_allclose(oom.obs[c], mem.obs[c], rtol=1e-4, atol=1e-5)
    assert (oom.obs["phase"] == mem.obs["phase"]).mean() >= 0.99
    return oom


ROWS = {name[4:]: fn for name, fn in dict(globals()).items() if name.startswith("row_")}
#: t-SNE ≈ 2 min, sude ≈ 30 s, scrublet ≈ 25 s for both backends (scrublet is also
#: checked by test_omicverse.py in the default run).
SLOW = {"tsne", "sude", "scrublet"}


def test_the_table_has_22_rows():
    assert len(ROWS) == 22


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in ROWS])
def test_row(name, request):
    class Stages:  # built on first use, once per module
        def __getitem__(self, key):
            return request.getfixturevalue(key)

    obj = ROWS[name](Stages())
    _out_of_core(obj)


def test_omicverse_sees_a_sparse_lazy_x_as_sparse(raw, make_h5ad):
    """identify_robust_genes' branch test answers True for a sparse lazy X only.

    scipy's own ``issparse`` stays False: scikit-learn and scanpy would
    otherwise treat the lazy matrix as an in-memory CSR matrix.
    """
    from omicverse.pp import _preprocess

    oom, mem = raw
    assert _preprocess.issparse(oom.X) and _preprocess.issparse(mem.X)
    assert not sp.issparse(oom.X)
    path, _ = make_h5ad(n_obs=10, n_vars=5, fmt="dense")
    dense = anndataoom.read(path)
    assert not _preprocess.issparse(dense.X)
    assert not _preprocess.issparse(np.zeros((2, 2)))
    dense.close()
