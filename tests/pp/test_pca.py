"""``oom.pp.pca`` against scanpy (arpack) in memory, on generated data and PBMC 3k."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scanpy as sc

import anndataoom as oom
from anndataoom import _oom


def _cos(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.abs((a * b).sum(0)) / np.linalg.norm(a, axis=0) / np.linalg.norm(b, axis=0)


def assert_pca_matches(ours, theirs, *, key="pca", cos=0.999, vr_rtol=1e-3, n=None):
    """Every loading and score column |cos| ≥ cos; variance(ratio) within vr_rtol."""
    obsm = "X_pca" if key == "pca" else key
    varm = "PCs" if key == "pca" else key
    n = n or theirs.obsm[obsm].shape[1]
    c = _cos(ours.varm[varm][:, :n], theirs.varm[varm][:, :n])
    assert c.min() >= cos, (c.argmin(), c.min())
    c = _cos(ours.obsm[obsm][:, :n], theirs.obsm[obsm][:, :n])
    assert c.min() >= cos, (c.argmin(), c.min())
    for f in ("variance_ratio", "variance"):
        np.testing.assert_allclose(
            ours.uns[key][f][:n], theirs.uns[key][f][:n], rtol=vr_rtol, err_msg=f
        )
    assert ours.uns[key]["params"] == theirs.uns[key]["params"]
    assert ours.obsm[obsm].dtype == theirs.obsm[obsm].dtype
    assert ours.obsm[obsm].shape == theirs.obsm[obsm].shape
    assert ours.varm[varm].shape == theirs.varm[varm].shape


def _log_pair(pair, path):
    a, m = pair(path)
    oom.pp.log1p(a)
    sc.pp.log1p(m)
    return a, m


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    from anndataoom.testing import gen_h5ad

    d = tmp_path_factory.mktemp("pca")
    out = {}
    for fmt, dtype in [("csr", "float32"), ("dense", "float64"), ("csc", "int32")]:
        p = d / f"{fmt}_{dtype}.h5ad"
        gen_h5ad(p, n_obs=500, n_vars=120, fmt=fmt, dtype=dtype, density=0.25, seed=7)
        out[fmt] = p
    return out


@pytest.mark.parametrize("fmt", ["csr", "dense", "csc"])
def test_generated_matches_arpack(pair, gen, fmt):
    a, m = _log_pair(pair, gen[fmt])
    oom.pp.pca(a, n_comps=30)
    sc.pp.pca(m, n_comps=30, svd_solver="arpack")
    assert_pca_matches(a, m)


@pytest.mark.parametrize("solver", ["gram", "krylov"])
def test_solvers_agree_with_arpack(pair, gen, solver):
    a, m = _log_pair(pair, gen["csr"])
    oom.pp.pca(a, n_comps=20, svd_solver=solver)
    sc.pp.pca(m, n_comps=20, svd_solver="arpack")
    assert_pca_matches(a, m, cos=0.9999)


def test_loadings_sign_convention(pair, gen):
    a, _ = _log_pair(pair, gen["csr"])
    oom.pp.pca(a, n_comps=10)
    pcs = a.varm["PCs"]
    top = pcs[np.abs(pcs).argmax(0), np.arange(pcs.shape[1])]
    assert (top > 0).all()
    # Deterministic: a second run gives the very same numbers.
    b = oom.pp.pca(a, n_comps=10, copy=True)
    np.testing.assert_array_equal(a.obsm["X_pca"], b.obsm["X_pca"])


def test_uncentered_is_truncated_svd(pair, gen):
    """zero_center=False: exact truncated SVD with sklearn's TruncatedSVD variances."""
    a, m = _log_pair(pair, gen["dense"])
    oom.pp.pca(a, n_comps=8, zero_center=False)
    x = np.asarray(m.X, dtype=np.float64)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    v = vt[:8].T
    assert _cos(a.varm["PCs"], v).min() > 0.99999
    scores = x @ v
    assert _cos(a.obsm["X_pca"], scores).min() > 0.99999
    var = scores.var(0)
    np.testing.assert_allclose(a.uns["pca"]["variance"], var, rtol=1e-6)
    np.testing.assert_allclose(a.uns["pca"]["variance_ratio"], var / x.var(0).sum(), rtol=1e-6)
    # scanpy (randomized TruncatedSVD) agrees on the leading components.
    sc.pp.pca(m, n_comps=8, zero_center=False)
    assert _cos(a.varm["PCs"][:, :3], m.varm["PCs"][:, :3]).min() > 0.999
    assert a.uns["pca"]["params"] == m.uns["pca"]["params"]


def test_mask_var_and_hvg_default(pair, gen):
    a, m = _log_pair(pair, gen["csr"])
    rng = np.random.default_rng(0)
    hv = rng.random(a.n_vars) < 0.5
    a.var["highly_variable"] = hv
    m.var["highly_variable"] = hv
    oom.pp.pca(a, n_comps=15)
    sc.pp.pca(m, n_comps=15)
    assert_pca_matches(a, m)
    assert (a.varm["PCs"][~hv] == 0).all()
    assert a.uns["pca"]["params"]["mask_var"] == "highly_variable"
    # mask_var=None: all genes; an explicit mask array.
    oom.pp.pca(a, n_comps=15, mask_var=None, key_added="all")
    sc.pp.pca(m, n_comps=15, mask_var=None, key_added="all")
    assert_pca_matches(a, m, key="all")
    mask = ~hv
    oom.pp.pca(a, n_comps=15, mask_var=mask, key_added="inv")
    sc.pp.pca(m, n_comps=15, mask_var=mask, key_added="inv")
    c = _cos(a.varm["inv"][mask], m.varm["inv"][mask])
    assert c.min() >= 0.999
    with pytest.warns(FutureWarning, match="use_highly_variable"):
        oom.pp.pca(a, n_comps=5, use_highly_variable=True, key_added="uhv")
    assert a.uns["uhv"]["params"]["use_highly_variable"] is True


def test_layer_copy_dtype_and_lazy_input(pair, gen):
    a, m = pair(gen["dense"])
    a.layers["lg"] = oom.pp.log1p(a.X)
    m.layers["lg"] = np.log1p(m.X)
    b = oom.pp.pca(a, n_comps=5, layer="lg", copy=True, dtype="float64")
    assert "X_pca" not in a.obsm and b.obsm["X_pca"].dtype == np.float64
    sc.pp.pca(m, n_comps=5, layer="lg", dtype="float64")
    assert_pca_matches(b, m)
    assert b.uns["pca"]["params"]["layer"] == "lg"
    # A lazy matrix on its own: scores (and info), like scanpy on an array.
    scores = oom.pp.pca(a.layers["lg"], n_comps=5)
    assert _cos(scores, m.obsm["X_pca"]).min() > 0.999
    s2, comps, ratio, var = oom.pp.pca(a.layers["lg"], n_comps=5, return_info=True)
    assert comps.shape == (5, a.n_vars)
    np.testing.assert_allclose(ratio, m.uns["pca"]["variance_ratio"], rtol=1e-4)


def test_in_memory_is_handed_to_scanpy(gen):
    m = ad.read_h5ad(gen["dense"])
    m2 = m.copy()
    oom.pp.pca(m, n_comps=5)
    sc.pp.pca(m2, n_comps=5)
    np.testing.assert_array_equal(m.obsm["X_pca"], m2.obsm["X_pca"])


def test_errors(pair, gen):
    a, _ = pair(gen["csr"])
    with pytest.raises(ValueError, match="n_comps"):
        oom.pp.pca(a, n_comps=500)
    with pytest.raises(ValueError, match="mask_var"):
        oom.pp.pca(a, n_comps=5, mask_var=np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match=r"Did not find `adata.var\['nope'\]`"):  # as scanpy
        oom.pp.pca(a, n_comps=5, mask_var="nope")
    assert "X_pca" not in a.obsm


def test_unknown_solver_warns_and_uses_the_default_as_scanpy(pair, gen):
    a, _ = pair(gen["csr"])
    oom.pp.pca(a, n_comps=5)
    want = a.obsm["X_pca"].copy()
    with pytest.warns(UserWarning, match="Ignoring svd_solver='magic'"):
        oom.pp.pca(a, n_comps=5, svd_solver="magic")
    np.testing.assert_array_equal(a.obsm["X_pca"], want)


def test_gram_kernel_is_the_covariance(gen):
    m = _oom.open(str(gen["dense"]), "X")
    x = ad.read_h5ad(gen["dense"]).X.astype(np.float64)
    n, mean, m2 = _oom.gram_state(m, "float64").finalize()
    assert n == x.shape[0]
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(m2 / (n - 1), np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12)
    _, _, m2f = _oom.gram_state(m, "float32").finalize()
    np.testing.assert_allclose(m2f, m2, rtol=1e-5, atol=1e-5 * np.abs(m2).max())


@pytest.mark.parametrize("zero_center", [True, False])
def test_fit_from_row_range_states_is_the_one_pass_fit(gen, zero_center):
    """What oom.distributed does: Gram states of row ranges, combined and solved in the core."""
    m = _oom.open(str(gen["csr"]), "X")
    whole = _oom.pca(m, 8, zero_center=zero_center, solver="gram", precision="float64",
                     dtype="float64")
    cuts = [0, 130, 131, 400, m.shape[0]]
    states = [_oom.gram_state(m.subset(np.arange(a, b, dtype=np.int64), None), "float64")
              for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    fit = _oom.pca_from_gram(_oom.PassState.combine(states), 8, zero_center=zero_center)
    for key in ("components", "variance", "variance_ratio", "mean"):
        np.testing.assert_allclose(fit[key], whole[key], rtol=1e-9, atol=1e-12)
    scores = _oom.pca_project(m, fit["components"], fit["mean"] if zero_center else None,
                              dtype="float64").finalize()
    np.testing.assert_allclose(scores, whole["scores"], rtol=1e-9, atol=1e-9)


def test_fit_from_gram_states_bad_input(gen):
    m = _oom.open(str(gen["csr"]), "X")
    with pytest.raises(ValueError, match="needs a gram state, not a positive_counts state"):
        _oom.pca_from_gram(_oom.positive_counts(m), 5)
    narrow = _oom.gram_state(m.subset(None, np.arange(3, dtype=np.int64)), "float64")
    with pytest.raises(ValueError, match="gram states of .* columns"):
        _oom.PassState.combine([_oom.gram_state(m, "float64"), narrow])
    with pytest.raises(ValueError, match="n_comps"):
        _oom.pca_from_gram(_oom.gram_state(m, "float64"), 500)
    with pytest.raises(ValueError, match="mean has"):
        _oom.pca_project(m, np.zeros((m.shape[1], 3)), np.zeros(2))


@pytest.fixture(scope="module")
def pbmc_pair(pbmc3k_path):
    """PBMC 3k after filter → normalize → log1p (lazy and in memory)."""

    def prep(mod, a):
        mod.pp.filter_genes(a, min_cells=3)
        mod.pp.normalize_total(a, target_sum=1e4)
        mod.pp.log1p(a)

    a, m = oom.read(pbmc3k_path), ad.read_h5ad(pbmc3k_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep(oom, a)
        prep(sc, m)
    yield a, m
    a.close()


def test_pbmc3k_hvg_scaled_50_components(pbmc_pair):
    """The issue's fidelity bar: normalize → log1p → hvg(2000) → scale(10) → pca(50)."""
    a, m = pbmc_pair
    a, m = a.copy(), m.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mod, x in ((oom, a), (sc, m)):
            mod.pp.highly_variable_genes(x, n_top_genes=2000)
            mod.pp.scale(x, max_value=10)
            mod.pp.pca(x, n_comps=50)
    assert_pca_matches(a, m, cos=0.999, vr_rtol=1e-3)


def test_pbmc3k_all_genes_krylov(pbmc_pair):
    """All 13,714 expressed genes: the streamed Krylov solver vs arpack."""
    a, m = pbmc_pair
    a, m = a.copy(), m.copy()
    assert a.n_vars > 10_000  # above the Gram solver's limit: Krylov
    oom.pp.pca(a, n_comps=20)
    sc.pp.pca(m, n_comps=20, svd_solver="arpack")
    assert_pca_matches(a, m, cos=0.999, vr_rtol=1e-3)


@pytest.mark.parametrize("zero_center", [True, False])
def test_all_solvers_agree(gen, zero_center):
    """Gram + full eigh, Gram + in-memory Lanczos, streamed Krylov: same answer."""
    from anndataoom.pp import log1p

    m = log1p(oom.read(gen["csr"]).X).matrix
    ref = _oom.pca(m, 12, zero_center=zero_center, solver="gram", precision="float64")
    for kw in (dict(solver="gram", full_eigh_max=10), dict(solver="krylov", seed=3)):
        r = _oom.pca(m, 12, zero_center=zero_center, precision="float64", **kw)
        assert _cos(r["components"], ref["components"]).min() > 0.99999
        np.testing.assert_allclose(r["variance"], ref["variance"], rtol=1e-6)
        np.testing.assert_allclose(r["variance_ratio"], ref["variance_ratio"], rtol=1e-6)
        np.testing.assert_allclose(r["scores"], ref["scores"], rtol=1e-3, atol=1e-4)


def test_projection_from_the_gram_pass_spill_is_the_two_pass_result(pbmc_pair, monkeypatch,
                                                                      tmp_path):
    """HVG → scale → PCA on PBMC 3k: the projection reads the rows the Gram pass kept in a
    temporary file; the scores equal a projection pass over the data, to the bit — also when
    no temporary file can be made or the temp dir is memory (the data is read again) — and
    nothing is left behind."""
    a, _ = pbmc_pair
    a = a.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oom.pp.highly_variable_genes(a, n_top_genes=2000)
        a = a[:, a.var["highly_variable"].to_numpy()]
        oom.pp.scale(a, max_value=10)
    m = a.X.matrix
    fit = _oom.pca_from_gram(_oom.gram_state(m, "float32"), 50, zero_center=True)
    two_pass = _oom.pca_project(m, fit["components"], fit["mean"], dtype="float32").finalize()
    monkeypatch.setenv("OOM_TMPDIR", str(tmp_path))
    one = _oom.pca(m, 50, zero_center=True, solver="auto", precision="float32",
                   dtype="float32")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("OOM_TMPDIR", str(tmp_path / "missing"))
    unspilled = _oom.pca(m, 50, zero_center=True, solver="auto", precision="float32",
                         dtype="float32")
    np.testing.assert_array_equal(one["components"], fit["components"])
    np.testing.assert_array_equal(one["scores"], two_pass)
    np.testing.assert_array_equal(unspilled["scores"], two_pass)
    if Path("/dev/shm").is_dir():  # memory: no spill there, the data is read again
        monkeypatch.setenv("OOM_TMPDIR", "/dev/shm")
        in_ram = _oom.pca(m, 50, zero_center=True, solver="auto", precision="float32",
                          dtype="float32")
        np.testing.assert_array_equal(in_ram["scores"], two_pass)
