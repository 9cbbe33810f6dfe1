"""scrublet / scrublet_simulate_doublets vs scanpy's, run in memory on the same data.

scanpy is deterministic for a fixed ``random_state`` (exact kNN below 8192
cells, arpack PCA), so the comparisons are exact: scores, calls, ``uns``,
the simulated doublets.  ``threshold`` is given because the automatic one
needs scikit-image.
"""

from __future__ import annotations

import hashlib
import inspect

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

import anndataoom as oom
from anndataoom._core._backed_array import BackedArray
from anndataoom.exceptions import InMemoryRequiredError
from anndataoom.pp._scrublet import scrublet, scrublet_simulate_doublets

THR = 0.25


def _digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _assert_same(ours, theirs, where="uns"):
    """Recursive equality of scrublet's ``uns`` entries (arrays exactly)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), where
        for k in theirs:
            _assert_same(ours[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray) and ours.dtype == theirs.dtype, where
        np.testing.assert_array_equal(ours, theirs, err_msg=where)
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), where
        for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
            _assert_same(o, t, f"{where}[{i}]")
    else:
        assert type(ours) is type(theirs) and ours == theirs, where


def _assert_same_result(ours, theirs):
    pd.testing.assert_frame_equal(ours.obs, theirs.obs, check_exact=True)
    _assert_same(ours.uns["scrublet"], theirs.uns["scrublet"])


def _assert_same_sim(ours, theirs):
    assert isinstance(ours, ad.AnnData) and not isinstance(ours, oom.AnnDataOOM)
    assert type(ours.X) is type(theirs.X) and ours.X.dtype == theirs.X.dtype
    assert ours.X.shape == theirs.X.shape
    if sp.issparse(theirs.X):
        assert ours.X.format == theirs.X.format
        for part in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(getattr(ours.X, part), getattr(theirs.X, part))
    else:
        np.testing.assert_array_equal(ours.X, theirs.X)
    pd.testing.assert_frame_equal(ours.obs, theirs.obs, check_exact=True)
    np.testing.assert_array_equal(ours.obsm["doublet_parents"], theirs.obsm["doublet_parents"])
    _assert_same(ours.uns, theirs.uns)


@pytest.fixture
def reads(monkeypatch):
    """Shapes of every lazy matrix loaded into memory from now on."""
    seen: list[tuple[int, int]] = []
    real = BackedArray.to_memory

    def spy(self):
        seen.append(self.shape)
        return real(self)

    monkeypatch.setattr(BackedArray, "to_memory", spy)
    return seen


@pytest.fixture(scope="session")
def files(tmp_path_factory, pbmc3k_path):
    """PBMC 3k subsets written in other layouts, and an HVG counts file with a layer."""
    d = tmp_path_factory.mktemp("scrublet")
    full = ad.read_h5ad(pbmc3k_path)
    out = {}
    sub = full[:1200].copy()
    out["csr"] = d / "csr.h5ad"
    sub.write_h5ad(out["csr"])
    csc = sub.copy()
    csc.X = csc.X.tocsc()
    out["csc"] = d / "csc.h5ad"
    csc.write_h5ad(out["csc"])
    n_cells = np.asarray((sub.X > 0).sum(axis=0)).ravel()
    top = np.sort(np.argsort(-n_cells, kind="stable")[:4000])
    dense = sub[:1000, top].copy()
    dense.X = dense.X.toarray().astype(np.int32)
    out["dense_i32"] = d / "dense_i32.h5ad"
    dense.write_h5ad(out["dense_i32"])
    # scanpy's own preprocessing, then raw counts of the kept cells × HVGs.
    h = sub.copy()
    sc.pp.filter_genes(h, min_cells=3)
    sc.pp.filter_cells(h, min_genes=3)
    counts = h.X.copy()
    sc.pp.normalize_total(h)
    sc.pp.log1p(h)
    sc.pp.highly_variable_genes(h)
    hv = h.var["highly_variable"].to_numpy()
    hvg = ad.AnnData(X=counts[:, hv], obs=h.obs[[]], var=h.var.loc[hv, []],
                     layers={"counts": counts[:, hv].copy()})
    out["hvg"] = d / "hvg.h5ad"
    hvg.write_h5ad(out["hvg"])
    return out


@pytest.fixture
def both(pair):
    """``both(path) -> (AnnDataOOM, in-memory AnnData)`` plus the file's digest checked at teardown."""
    checked = []

    def make(path):
        checked.append((path, _digest(path)))
        return pair(path)

    yield make
    for path, digest in checked:
        assert _digest(path) == digest, f"{path} changed"


def test_pbmc3k_equals_scanpy(both, pbmc3k_path, reads):
    b, a = both(pbmc3k_path)
    assert scrublet(b, threshold=THR, verbose=False) is None
    sc.pp.scrublet(a, threshold=THR, verbose=False)
    _assert_same_result(b, a)
    assert a.obs["predicted_doublet"].any() and not a.obs["predicted_doublet"].all()
    assert hasattr(b.X, "matrix") and b.shape == a.shape
    # only the kept cells × highly variable genes were read
    assert reads and all(c < b.n_vars // 10 for _, c in reads)


def test_batch_key_equals_scanpy(both, pbmc3k_path):
    b, a = both(pbmc3k_path)
    labels = pd.Categorical(np.random.default_rng(7).choice(["b1", "b2", "b3"], a.n_obs))
    a.obs["sample"] = labels
    b.obs["sample"] = labels
    scrublet(b, batch_key="sample", threshold=THR, verbose=False)
    sc.pp.scrublet(a, batch_key="sample", threshold=THR, verbose=False)
    _assert_same_result(b, a)
    assert set(b.uns["scrublet"]["batches"]) == {"b1", "b2", "b3"}
    assert b.uns["scrublet"]["batched_by"] == "sample"


def test_batch_key_string_column(both, files):
    b, a = both(files["csr"])
    labels = np.random.default_rng(3).choice(["x", "y"], a.n_obs).astype(object)
    a.obs["lane"] = labels
    b.obs["lane"] = labels
    scrublet(b, batch_key="lane", threshold=0.3, verbose=False)
    sc.pp.scrublet(a, batch_key="lane", threshold=0.3, verbose=False)
    _assert_same_result(b, a)


OPTIONS = [
    dict(log_transform=True, mean_center=False),
    dict(mean_center=False, normalize_variance=False, n_prin_comps=20),
    dict(sim_doublet_ratio=1.5, n_neighbors=15, expected_doublet_rate=0.08,
         stdev_doublet_rate=0.03, get_doublet_neighbor_parents=True, random_state=5),
    dict(synthetic_doublet_umi_subsampling=0.6),
    dict(threshold=0.1, knn_dist_metric="manhattan"),
]


@pytest.mark.parametrize("kw", OPTIONS)
def test_options_equal_scanpy(both, files, kw):
    b, a = both(files["csr"])
    kw = dict(threshold=THR, verbose=False) | kw
    np.random.seed(11)  # UMI subsampling also draws from numpy's global generator
    scrublet(b, **kw)
    np.random.seed(11)
    sc.pp.scrublet(a, **kw)
    _assert_same_result(b, a)


def test_random_state_instance(both, files):
    b, a = both(files["csr"])
    rs_b, rs_a = np.random.RandomState(42), np.random.RandomState(42)
    scrublet(b, threshold=THR, verbose=False, random_state=rs_b)
    sc.pp.scrublet(a, threshold=THR, verbose=False, random_state=rs_a)
    pd.testing.assert_frame_equal(b.obs, a.obs, check_exact=True)
    ub, ua = dict(b.uns["scrublet"]), dict(a.uns["scrublet"])
    assert ub["parameters"].pop("random_state") is rs_b
    ua["parameters"].pop("random_state")
    _assert_same(ub, ua)
    # the shared generator was advanced exactly as scanpy advanced it
    assert rs_b.randint(1 << 30) == rs_a.randint(1 << 30)


@pytest.mark.parametrize("name", ["csc", "dense_i32"])
def test_layouts_equal_scanpy(both, files, name):
    b, a = both(files[name])
    scrublet(b, threshold=THR, verbose=False)
    sc.pp.scrublet(a, threshold=THR, verbose=False)
    _assert_same_result(b, a)


def test_copy(both, files):
    b, a = both(files["csr"])
    obs_b, obs_a = b.obs.copy(), a.obs.copy()
    rb = scrublet(b, threshold=THR, verbose=False, copy=True)
    ra = sc.pp.scrublet(a, threshold=THR, verbose=False, copy=True)
    assert isinstance(rb, oom.AnnDataOOM) and rb is not b and hasattr(rb.X, "matrix")
    _assert_same_result(rb, ra)
    pd.testing.assert_frame_equal(b.obs, obs_b)
    pd.testing.assert_frame_equal(a.obs, obs_a)
    assert "scrublet" not in b.uns and "scrublet" not in a.uns


SIMULATE = [
    dict(),
    dict(layer="counts", sim_doublet_ratio=0.5, random_seed=3),
    dict(synthetic_doublet_umi_subsampling=0.5),
    dict(sim_doublet_ratio=0.05),
]


@pytest.mark.parametrize("kw", SIMULATE)
def test_simulate_doublets_equals_scanpy(both, files, reads, kw):
    b, a = both(files["hvg"])
    np.random.seed(5)
    sb = scrublet_simulate_doublets(b, **kw)
    np.random.seed(5)
    sa = sc.pp.scrublet_simulate_doublets(a, **kw)
    _assert_same_sim(sb, sa)
    # only the rows drawn were read
    parents = np.unique(sa.obsm["doublet_parents"])
    assert [r for r, _ in reads] == [parents.size]


def test_simulate_doublets_random_state_instance(both, files):
    b, a = both(files["hvg"])
    rs_b, rs_a = np.random.RandomState(9), np.random.RandomState(9)
    _assert_same_sim(scrublet_simulate_doublets(b, random_seed=rs_b),
                     sc.pp.scrublet_simulate_doublets(a, random_seed=rs_a))
    assert rs_b.randint(1 << 30) == rs_a.randint(1 << 30)


def test_simulate_doublets_lazy_layer_after_filter(both, pbmc3k_path):
    """The layer may be any lazy matrix, here X after filtering and normalisation."""
    b, a = both(pbmc3k_path)
    oom.pp.filter_cells(b, min_genes=200)
    oom.pp.normalize_total(b, target_sum=1e4)
    sc.pp.filter_cells(a, min_genes=200)
    sc.pp.normalize_total(a, target_sum=1e4)
    sb = scrublet_simulate_doublets(b, sim_doublet_ratio=0.3)
    sa = sc.pp.scrublet_simulate_doublets(a, sim_doublet_ratio=0.3)
    np.testing.assert_array_equal(sb.obsm["doublet_parents"], sa.obsm["doublet_parents"])
    np.testing.assert_allclose(sb.X.toarray(), sa.X.toarray(), rtol=1e-6)
    np.testing.assert_allclose(sb.obs["n_counts"], sa.obs["n_counts"], rtol=1e-6)


@pytest.mark.parametrize("batch_key", [None, "half"])
def test_adata_sim_equals_scanpy(both, files, batch_key):
    """scanpy's advanced use: simulate, normalise both, then scrublet(adata, adata_sim)."""
    b, a = both(files["hvg"])
    half = np.where(np.arange(a.n_obs) % 2 == 0, "even", "odd")
    a.obs["half"] = half
    b.obs["half"] = half
    sim_b = scrublet_simulate_doublets(b, layer="counts")
    sim_a = sc.pp.scrublet_simulate_doublets(a, layer="counts")
    oom.pp.normalize_total(b, target_sum=1e6)
    sc.pp.normalize_total(a, target_sum=1e6)
    sc.pp.normalize_total(sim_b, target_sum=1e6)
    sc.pp.normalize_total(sim_a, target_sum=1e6)
    scrublet(b, adata_sim=sim_b, batch_key=batch_key, threshold=THR, verbose=False)
    sc.pp.scrublet(a, adata_sim=sim_a, batch_key=batch_key, threshold=THR, verbose=False)
    _assert_same_result(b, a)


def test_adata_sim_on_disk(both, files, tmp_path):
    """An adata_sim written to disk and opened lazily is loaded (within the cap)."""
    b, a = both(files["hvg"])
    sim = sc.pp.scrublet_simulate_doublets(a, layer="counts")
    sc.pp.normalize_total(sim, target_sum=1e6)
    sim.write_h5ad(tmp_path / "sim.h5ad")
    oom.pp.normalize_total(b, target_sum=1e6)
    sc.pp.normalize_total(a, target_sum=1e6)
    scrublet(b, adata_sim=oom.read(tmp_path / "sim.h5ad"), threshold=THR, verbose=False)
    sc.pp.scrublet(a, adata_sim=sim, threshold=THR, verbose=False)
    _assert_same_result(b, a)


def test_in_memory_handed_to_scanpy(files):
    a1, a2 = ad.read_h5ad(files["csr"]), ad.read_h5ad(files["csr"])
    scrublet(a1, threshold=THR, verbose=False)
    sc.pp.scrublet(a2, threshold=THR, verbose=False)
    _assert_same_result(a1, a2)
    _assert_same_sim(scrublet_simulate_doublets(a1), sc.pp.scrublet_simulate_doublets(a2))


def test_oom_with_x_in_memory(both, files):
    """An AnnDataOOM whose X was loaded runs scanpy's code on a plain AnnData, results copied back."""
    b, a = both(files["csr"])
    b.X = b.X.to_memory()
    labels = np.where(np.arange(a.n_obs) % 3 == 0, "u", "v")
    a.obs["s"] = labels
    b.obs["s"] = labels
    rb = scrublet(b, batch_key="s", threshold=THR, verbose=False, copy=True)
    ra = sc.pp.scrublet(a, batch_key="s", threshold=THR, verbose=False, copy=True)
    assert isinstance(rb, oom.AnnDataOOM) and "scrublet" not in b.uns
    _assert_same_result(rb, ra)
    b.layers["counts"] = b.X.copy()
    _assert_same_sim(scrublet_simulate_doublets(b, layer="counts"), sc.pp.scrublet_simulate_doublets(a))


def test_lazy_adata_sim_with_in_memory_adata(files, tmp_path):
    a1, a2 = ad.read_h5ad(files["hvg"]), ad.read_h5ad(files["hvg"])
    sim = sc.pp.scrublet_simulate_doublets(a1, layer="counts")
    sim.write_h5ad(tmp_path / "sim.h5ad")
    scrublet(a1, adata_sim=oom.read(tmp_path / "sim.h5ad"), threshold=THR, verbose=False)
    sc.pp.scrublet(a2, adata_sim=sim, threshold=THR, verbose=False)
    _assert_same_result(a1, a2)


def test_threshold_none_needs_skimage(both, files):
    b, a = both(files["csr"])
    try:
        import skimage  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="skimage") as theirs:
            sc.pp.scrublet(a, verbose=False)
        with pytest.raises(ValueError, match="skimage") as ours:
            scrublet(b, verbose=False)
        assert str(ours.value) == str(theirs.value)
        assert "doublet_score" not in b.obs
    else:
        scrublet(b, verbose=False)
        sc.pp.scrublet(a, verbose=False)
        _assert_same_result(b, a)


def _error(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        return e
    raise AssertionError(f"{fn.__name__} did not raise")


BAD_SCRUBLET = [
    dict(batch_key="nope"),
    dict(n_prin_comps=0),
    dict(knn_dist_metric="nope"),
    dict(random_state="abc"),
    dict(sim_doublet_ratio=-1),
    dict(n_neighbors=0),
    dict(threshold="x"),
]


@pytest.mark.parametrize("kw", BAD_SCRUBLET)
def test_bad_scrublet_arguments(both, files, kw):
    b, a = both(files["csr"])
    obs = b.obs.copy()
    kw = dict(threshold=THR, verbose=False) | kw
    theirs = _error(sc.pp.scrublet, a, **kw)
    ours = _error(scrublet, b, **kw)
    assert type(ours) is type(theirs), (ours, theirs)
    pd.testing.assert_frame_equal(b.obs, obs)
    assert "scrublet" not in b.uns


BAD_SIMULATE = [
    dict(layer="nope"),
    dict(layer="X"),
    dict(sim_doublet_ratio=2000),  # more pairs than there are
    dict(sim_doublet_ratio=-1),
    dict(random_seed="abc"),
]


@pytest.mark.parametrize("kw", BAD_SIMULATE)
def test_bad_simulate_arguments(both, files, kw):
    b, a = both(files["hvg"])
    theirs = _error(sc.pp.scrublet_simulate_doublets, a, **kw)
    ours = _error(scrublet_simulate_doublets, b, **kw)
    assert type(ours) is type(theirs), (ours, theirs)


def test_adata_sim_wrong_genes(both, files):
    b, a = both(files["hvg"])
    sim = sc.pp.scrublet_simulate_doublets(a[:, :100].copy())
    theirs = _error(sc.pp.scrublet, a, adata_sim=sim, threshold=THR, verbose=False)
    ours = _error(scrublet, b, adata_sim=sim, threshold=THR, verbose=False)
    assert isinstance(ours, type(theirs)), (ours, theirs)
    assert "doublet_score" not in b.obs


def _scrublet_dense_bytes(mem: ad.AnnData, ratio: float = 2.0) -> int:
    """(observed + simulated) × HVGs × float64 of scanpy's pipeline on ``mem``."""
    h = mem.copy()
    sc.pp.filter_genes(h, min_cells=3)
    sc.pp.filter_cells(h, min_genes=3)
    sc.pp.normalize_total(h)
    sc.pp.log1p(h)
    sc.pp.highly_variable_genes(h)
    return (h.n_obs + int(h.n_obs * ratio)) * int(h.var["highly_variable"].sum()) * 8


def test_refused_above_cap_before_reading(both, files, reads, monkeypatch):
    b, a = both(files["csr"])
    need = _scrublet_dense_bytes(a)
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", str(need - 1))
    obs = b.obs.copy()
    with pytest.raises(InMemoryRequiredError, match="batch_key") as e:
        scrublet(b, threshold=THR, verbose=False)
    assert "ANNDATAOOM_MAX_DENSE_BYTES" in str(e.value) and "MiB" in str(e.value)
    assert reads == []
    pd.testing.assert_frame_equal(b.obs, obs)
    assert "scrublet" not in b.uns
    # exactly at the cap it runs, and gives scanpy's result
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", str(need))
    scrublet(b, threshold=THR, verbose=False)
    sc.pp.scrublet(a, threshold=THR, verbose=False)
    _assert_same_result(b, a)


def test_batch_key_fits_under_cap(both, files, monkeypatch):
    b, a = both(files["csr"])
    labels = np.where(np.arange(a.n_obs) < a.n_obs // 2, "p", "q")
    a.obs["s"] = labels
    b.obs["s"] = labels
    per_batch = max(_scrublet_dense_bytes(a[a.obs["s"] == s]) for s in ("p", "q"))
    whole = _scrublet_dense_bytes(a)
    assert per_batch < whole
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", str(per_batch))
    with pytest.raises(InMemoryRequiredError):
        scrublet(b, threshold=THR, verbose=False)
    scrublet(b, batch_key="s", threshold=THR, verbose=False)
    sc.pp.scrublet(a, batch_key="s", threshold=THR, verbose=False)
    _assert_same_result(b, a)


def test_sparse_scrublet_refused_above_cap(both, files, reads, monkeypatch):
    """Without mean_center scrublet stays sparse: the cap applies to that smaller size."""
    b, a = both(files["csr"])
    dense = _scrublet_dense_bytes(a)
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", str(dense // 2))
    with pytest.raises(InMemoryRequiredError):
        scrublet(b, threshold=THR, verbose=False)
    assert reads == []
    scrublet(b, threshold=THR, verbose=False, mean_center=False)  # sparse: fits
    sc.pp.scrublet(a, threshold=THR, verbose=False, mean_center=False)
    _assert_same_result(b, a)
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", "10000")
    del b.uns["scrublet"]
    with pytest.raises(InMemoryRequiredError, match="sparse"):
        scrublet(b, threshold=THR, verbose=False, mean_center=False)
    assert "scrublet" not in b.uns


def test_simulate_refused_above_cap(both, files, reads, monkeypatch):
    b, _ = both(files["hvg"])
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", "100000")
    with pytest.raises(InMemoryRequiredError, match="simulating"):
        scrublet_simulate_doublets(b)
    assert reads == []


def test_simulate_dense_input_is_sized_by_its_counts(both, files, tmp_path, monkeypatch):
    """A dense file is read as dense rows, but the doublets are as sparse as its counts."""
    m = ad.read_h5ad(files["hvg"])
    m.X = m.X.toarray().astype(np.float64)
    path = tmp_path / "dense.h5ad"
    m.write_h5ad(path)
    b, a = both(path)
    # room for the rows read and the sparse doublets, not for dense doublets
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", str(3 * m.X.nbytes))
    _assert_same_sim(scrublet_simulate_doublets(b), sc.pp.scrublet_simulate_doublets(a))


def test_a_batch_too_small_to_score_is_named(both, files):
    b, a = both(files["csr"])
    labels = np.where(np.arange(a.n_obs) < 2, "tiny", "rest")
    b.obs["s"] = labels
    with pytest.raises(ValueError, match="batch 'tiny'.*2 cells"):
        scrublet(b, batch_key="s", threshold=THR, verbose=False)
    assert "scrublet" not in b.uns and "doublet_score" not in b.obs


@pytest.mark.parametrize(("ours", "theirs"), [(scrublet, sc.pp.scrublet),
                                              (scrublet_simulate_doublets, sc.pp.scrublet_simulate_doublets)])
def test_signature_as_scanpy(ours, theirs):
    po = inspect.signature(ours).parameters
    pt = inspect.signature(theirs).parameters
    assert list(po) == list(pt)
    for name, par in pt.items():
        assert po[name].kind == par.kind, name
        assert po[name].default == par.default, name
