"""``pp.recipe_zheng17`` / ``recipe_seurat`` / ``recipe_weinreb17`` against scanpy's own.

Every expected value comes from scanpy's recipe run in memory on the same
file (``anndata.read_h5ad``); ours runs on ``oom.read`` of that file.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from scipy import sparse

import anndataoom as oom
from anndataoom.pp._recipes import recipe_seurat, recipe_weinreb17, recipe_zheng17

# scanpy's recipes call its deprecated filter_genes_dispersion
pytestmark = pytest.mark.filterwarnings(
    "ignore:Use sc.pp.highly_variable_genes instead:FutureWarning")

OURS = {"zheng17": recipe_zheng17, "seurat": recipe_seurat, "weinreb17": recipe_weinreb17}
THEIRS = {"zheng17": sc.pp.recipe_zheng17, "seurat": sc.pp.recipe_seurat,
          "weinreb17": sc.pp.recipe_weinreb17}


def _digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _dense(x):
    x = x.to_memory() if hasattr(x, "to_memory") else x
    return np.asarray(x.toarray() if sparse.issparse(x) else x)


def _assert_frames(ours: pd.DataFrame, theirs: pd.DataFrame):
    assert list(ours.columns) == list(theirs.columns)
    pd.testing.assert_index_equal(ours.index, theirs.index)
    for c in theirs.columns:
        a, b = ours[c].to_numpy(), theirs[c].to_numpy()
        if np.issubdtype(b.dtype, np.number):
            assert a.dtype == b.dtype, c
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=c)
        else:
            assert (a == b).all(), c


def _assert_same(a, m, *, x_rtol=1e-5, x_atol=1e-5):
    """Lazy result ``a`` equals scanpy's in-memory result ``m``."""
    assert hasattr(a.X, "matrix"), "X must stay lazy"
    assert a.shape == m.shape
    _assert_frames(a.obs, m.obs)
    _assert_frames(a.var, m.var)
    assert sorted(a.uns.keys()) == sorted(m.uns.keys())
    if "log1p" in m.uns:
        assert dict(a.uns["log1p"]) == dict(m.uns["log1p"])
    np.testing.assert_allclose(_dense(a.X), _dense(m.X), rtol=x_rtol, atol=x_atol)


#: warnings only scanpy's in-memory code gives (deprecation, sparse densified by scale)
_SCANPY_ONLY = ("Use sc.pp.highly_variable_genes instead", "Use sc.pl.highly_variable_genes",
                "zero-centering a sparse array")


def _both(ours, theirs):
    """Run ``ours()`` and ``theirs()``; both must give the same warnings. Return the results."""
    got, out = [], []
    for call in (ours, theirs):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out.append(call())
        got.append(sorted({str(x.message) for x in w
                           if not str(x.message).startswith(_SCANPY_ONLY)}))
    assert got[0] == got[1]
    return out


def _assert_pca(ours, theirs, *, atol):
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    sign = np.sign((ours.astype(np.float64) * theirs).sum(axis=0))
    assert (sign != 0).all()
    np.testing.assert_allclose(ours * sign, theirs, atol=atol)


@contextlib.contextmanager
def no_materialise():
    """Make any read of a whole lazy X fail inside the block."""
    from anndataoom._core._backed_array import BackedArray

    def refuse(self, *args, **kwargs):
        raise AssertionError("the recipe loaded X into memory")

    with pytest.MonkeyPatch.context() as mp:
        for name in ("to_memory", "toarray", "todense", "__array__"):
            mp.setattr(BackedArray, name, refuse, raising=False)
        yield


@pytest.fixture
def seurat_file(make_h5ad):
    """Counts where most cells have ≥ 200 genes (Seurat's cell filter), some empty cells/genes."""
    path, _ = make_h5ad("seurat.h5ad", n_obs=300, n_vars=700, density=0.35, seed=21,
                        empty_rows=(4, 77), empty_cols=(0, 9, 500))
    return path


@pytest.fixture
def dense_f32(make_h5ad):
    path, _ = make_h5ad("dense_f32.h5ad", n_obs=250, n_vars=180, fmt="dense",
                        dtype="float32", density=0.3, seed=8)
    return path


# -- zheng17 --------------------------------------------------------------------------


def test_zheng17_pbmc3k(pbmc3k_path):
    m = ad.read_h5ad(pbmc3k_path)
    sc.pp.recipe_zheng17(m)
    a = oom.read(pbmc3k_path)
    with no_materialise():
        assert recipe_zheng17(a) is None
    assert a.n_vars == 1000
    _assert_same(a, m)
    assert list(a.obs.columns) == ["barcode", "n_counts_all"]
    assert list(a.var.columns) == ["gene_ids", "gene_symbols", "n_counts", "mean", "std"]


def test_zheng17_pbmc3k_no_log_ties_at_cutoff(pbmc3k_path):
    # scanpy compares the f64 dispersions with a float32 cutoff: here it keeps 499 of 500
    m, a = ad.read_h5ad(pbmc3k_path), oom.read(pbmc3k_path)
    _both(lambda: recipe_zheng17(a, n_top_genes=500, log=False),
          lambda: sc.pp.recipe_zheng17(m, n_top_genes=500, log=False))
    assert a.n_vars == 499
    assert "log1p" not in a.uns
    _assert_same(a, m)


@pytest.mark.parametrize("name", ["csr_f32", "dense_i32", "csc_f64", "csr_i64"])
@pytest.mark.parametrize("n_top_genes", [2, 57, 300])
@pytest.mark.parametrize("log", [True, False])
def test_zheng17_generated(gen_files, pair, name, n_top_genes, log):
    a, m = pair(gen_files[name])
    _both(lambda: recipe_zheng17(a, n_top_genes=n_top_genes, log=log),
          lambda: sc.pp.recipe_zheng17(m, n_top_genes=n_top_genes, log=log))
    _assert_same(a, m)


def test_zheng17_selection_keeps_no_gene(gen_files, pair):
    # the single top gene's f64 dispersion is below its float32 rounding: scanpy keeps
    # no gene and fails on the empty matrix; we refuse the empty selection
    a, m = pair(gen_files["csr_f32"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="0 feature"):
            sc.pp.recipe_zheng17(m, n_top_genes=1)
        with pytest.raises(ValueError, match="no gene"):
            recipe_zheng17(a, n_top_genes=1)


def test_zheng17_numpy_integer_n_top_genes(gen_files, pair):
    a, m = pair(gen_files["csr_f32"])
    _both(lambda: recipe_zheng17(a, n_top_genes=np.int64(40), log=False),
          lambda: sc.pp.recipe_zheng17(m, n_top_genes=np.int64(40), log=False))
    _assert_same(a, m)


@pytest.mark.filterwarnings("ignore:Some cells have zero counts:UserWarning")
def test_zheng17_copy_leaves_input(gen_files):
    path = gen_files["csr_f32"]
    before = _digest(path)
    a = oom.read(path)
    x0, obs0, var0, uns0 = _dense(a.X), a.obs.copy(), a.var.copy(), sorted(a.uns.keys())
    m = ad.read_h5ad(path)
    out = recipe_zheng17(a, n_top_genes=50, copy=True)
    assert isinstance(out, oom.AnnDataOOM) and out is not a
    expected = sc.pp.recipe_zheng17(m, n_top_genes=50, copy=True)
    _assert_same(out, expected)
    assert a.shape == (400, 600)
    pd.testing.assert_frame_equal(a.obs, obs0)
    pd.testing.assert_frame_equal(a.var, var0)
    assert sorted(a.uns.keys()) == uns0
    np.testing.assert_array_equal(_dense(a.X), x0)
    assert _digest(path) == before


@pytest.mark.filterwarnings("ignore:Some cells have zero counts:UserWarning")
def test_zheng17_source_file_unchanged(gen_files):
    path = gen_files["dense_i32"]
    before = _digest(path)
    a = oom.read(path)
    recipe_zheng17(a, n_top_genes=80)
    _dense(a.X)  # reading the result does not write either
    a.close()
    assert _digest(path) == before
    # and the file still reads as the original counts
    np.testing.assert_array_equal(_dense(oom.read(path).X), ad.read_h5ad(path).X)


@pytest.mark.parametrize("bad, exc", [("10", TypeError), (2.5, TypeError), (True, TypeError),
                                      (None, TypeError), (0, ValueError), (-3, ValueError),
                                      (601, ValueError)])
def test_zheng17_bad_n_top_genes_refused_before_changes(gen_files, bad, exc):
    a = oom.read(gen_files["csr_f32"])
    with pytest.raises(exc, match="n_top_genes"):
        recipe_zheng17(a, n_top_genes=bad)
    assert a.shape == (400, 600) and "n_counts" not in a.var and "n_counts_all" not in a.obs
    assert "log1p" not in a.uns


def test_zheng17_more_top_genes_than_kept(make_h5ad):
    # two genes without counts go in filter_genes(min_counts=1): scanpy fails indexing
    path, _ = make_h5ad(n_obs=100, n_vars=60, density=0.3, seed=4, empty_cols=(3, 30))
    with pytest.raises(IndexError):
        sc.pp.recipe_zheng17(ad.read_h5ad(path), n_top_genes=60)
    with pytest.raises(ValueError, match="n_top_genes=60"):
        recipe_zheng17(oom.read(path), n_top_genes=60)


@pytest.mark.filterwarnings("ignore:Some cells have zero counts:UserWarning")
def test_zheng17_in_memory_handed_to_scanpy(gen_files):
    path = gen_files["csr_f32"]
    m1, m2 = ad.read_h5ad(path), ad.read_h5ad(path)
    assert recipe_zheng17(m1, n_top_genes=30) is None
    sc.pp.recipe_zheng17(m2, n_top_genes=30)
    assert type(m1) is ad.AnnData and m1.shape == m2.shape
    np.testing.assert_array_equal(_dense(m1.X), _dense(m2.X))
    pd.testing.assert_frame_equal(m1.var, m2.var)
    out = recipe_zheng17(ad.read_h5ad(path), n_top_genes=30, copy=True)
    np.testing.assert_array_equal(_dense(out.X), _dense(m2.X))


# -- seurat ---------------------------------------------------------------------------


@pytest.mark.parametrize("log", [True, False])
def test_seurat_pbmc3k(pbmc3k_path, log):
    m = ad.read_h5ad(pbmc3k_path)
    sc.pp.recipe_seurat(m, log=log)
    a = oom.read(pbmc3k_path)
    with no_materialise():
        assert recipe_seurat(a, log=log) is None
    _assert_same(a, m)
    assert list(a.obs.columns) == ["barcode", "n_genes"]
    assert list(a.var.columns) == ["gene_ids", "gene_symbols", "n_cells", "mean", "std"]
    x = _dense(a.X)
    assert x.max() <= 10 and x.min() >= -10
    assert ("log1p" in a.uns) == log


@pytest.mark.parametrize("fmt, dtype", [("csr", "float32"), ("dense", "int32"),
                                        ("csc", "float64")])
@pytest.mark.parametrize("log", [True, False])
def test_seurat_generated(make_h5ad, pair, fmt, dtype, log):
    path, _ = make_h5ad(n_obs=300, n_vars=700, density=0.35, seed=21, fmt=fmt, dtype=dtype,
                        empty_rows=(4, 77), empty_cols=(0, 9, 500))
    a, m = pair(path)
    sc.pp.recipe_seurat(m, log=log)
    recipe_seurat(a, log=log)
    assert 0 < a.n_obs < 300 and 0 < a.n_vars < 700  # both filters and the selection acted
    _assert_same(a, m)


@pytest.mark.filterwarnings("ignore:Some cells have zero counts:UserWarning")
def test_seurat_copy_leaves_input(seurat_file):
    before = _digest(seurat_file)
    a = oom.read(seurat_file)
    x0 = _dense(a.X)
    out = recipe_seurat(a, copy=True)
    assert isinstance(out, oom.AnnDataOOM) and out is not a
    _assert_same(out, sc.pp.recipe_seurat(ad.read_h5ad(seurat_file), copy=True))
    assert a.shape == (300, 700) and "n_genes" not in a.obs and "n_cells" not in a.var
    assert "mean" not in a.var and "log1p" not in a.uns
    np.testing.assert_array_equal(_dense(a.X), x0)
    assert _digest(seurat_file) == before


@pytest.mark.filterwarnings("ignore:Some cells have zero counts:UserWarning")
def test_seurat_in_memory_handed_to_scanpy(seurat_file):
    m1, m2 = ad.read_h5ad(seurat_file), ad.read_h5ad(seurat_file)
    recipe_seurat(m1, log=False)
    sc.pp.recipe_seurat(m2, log=False)
    np.testing.assert_array_equal(_dense(m1.X), _dense(m2.X))
    pd.testing.assert_frame_equal(m1.obs, m2.obs)


# -- plot -----------------------------------------------------------------------------


def _scatter_points(fig):
    return [np.asarray(c.get_offsets()) for ax in fig.axes for c in ax.collections]


@pytest.fixture
def no_show():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    autoshow = sc.settings.autoshow
    sc.settings.autoshow = False
    plt.close("all")
    yield plt
    sc.settings.autoshow = autoshow
    plt.close("all")


@pytest.mark.parametrize("name, kw", [("zheng17", dict(n_top_genes=40)), ("seurat", {}),
                                      ("seurat", dict(log=False))])
def test_plot_as_scanpy(seurat_file, no_show, name, kw):
    plt = no_show
    a, m = oom.read(seurat_file), ad.read_h5ad(seurat_file)

    def run(recipe, adata):
        plt.figure()
        recipe(adata, plot=True, **kw)
        return plt.gcf()

    ours, theirs = _both(lambda: run(OURS[name], a), lambda: run(THEIRS[name], m))
    _assert_same(a, m)
    assert ours is not theirs and len(ours.axes) == len(theirs.axes) == 2
    assert [ax.get_xscale() for ax in ours.axes] == [ax.get_xscale() for ax in theirs.axes]
    assert [ax.get_ylabel() for ax in ours.axes] == [ax.get_ylabel() for ax in theirs.axes]
    p, q = _scatter_points(ours), _scatter_points(theirs)
    assert len(p) == len(q) == 4 and sum(len(x) for x in p) > 0
    for x, y in zip(p, q, strict=True):
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=1e-5, equal_nan=True)


@pytest.mark.filterwarnings("ignore:Some cells have zero counts:UserWarning")
def test_no_plot_makes_no_figure(seurat_file):
    from matplotlib import pyplot as plt

    plt.close("all")
    recipe_seurat(oom.read(seurat_file))
    recipe_zheng17(oom.read(seurat_file), n_top_genes=20)
    assert plt.get_fignums() == []


# -- weinreb17 ------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [dict(svd_solver="arpack", n_pcs=10),
                                dict(log=False, n_pcs=5, svd_solver="full"),
                                dict(mean_threshold=0.5, cv_threshold=1, n_pcs=12,
                                     svd_solver="full", random_state=3)])
@pytest.mark.parametrize("which", ["dense_f32", "dense_i32"])
def test_weinreb17(gen_files, dense_f32, pair, kw, which):
    path = dense_f32 if which == "dense_f32" else gen_files["dense_i32"]
    a, m = pair(path)
    n_vars = a.n_vars
    sc.pp.recipe_weinreb17(m, **kw)
    with no_materialise():
        assert recipe_weinreb17(a, **kw) is None
    assert 0 < a.n_vars < n_vars  # the CV filter acted
    _assert_same(a, m)
    assert sorted(a.obsm.keys()) == sorted(m.obsm.keys())
    assert a.X.dtype == m.X.dtype
    _assert_pca(a.obsm["X_pca"], m.obsm["X_pca"], atol=5e-4)


def test_weinreb17_default_solver(dense_f32, pair):
    # scanpy's default is sklearn's randomized PCA; ours is exact: the leading
    # components (well separated on these data) agree
    a, m = pair(dense_f32)
    sc.pp.recipe_weinreb17(m)
    recipe_weinreb17(a)
    _assert_same(a, m)
    assert a.obsm["X_pca"].shape == m.obsm["X_pca"].shape == (250, 50)
    assert a.obsm["X_pca"].dtype == m.obsm["X_pca"].dtype == np.float32
    for k in range(2):
        r = np.corrcoef(a.obsm["X_pca"][:, k], m.obsm["X_pca"][:, k])[0, 1]
        assert abs(r) > 0.999, (k, r)


@pytest.mark.filterwarnings("ignore:Some cells have zero counts:UserWarning")
def test_weinreb17_copy_leaves_input(dense_f32):
    before = _digest(dense_f32)
    a = oom.read(dense_f32)
    x0 = _dense(a.X)
    out = recipe_weinreb17(a, n_pcs=4, svd_solver="full", copy=True)
    assert isinstance(out, oom.AnnDataOOM) and out is not a
    expected = sc.pp.recipe_weinreb17(ad.read_h5ad(dense_f32), n_pcs=4, svd_solver="full",
                                      copy=True)
    _assert_same(out, expected)
    _assert_pca(out.obsm["X_pca"], expected.obsm["X_pca"], atol=5e-4)
    assert a.shape == (250, 180) and "X_pca" not in a.obsm and "log1p" not in a.uns
    np.testing.assert_array_equal(_dense(a.X), x0)
    assert _digest(dense_f32) == before


@pytest.mark.parametrize("name", ["csr_f32", "csc_f64"])
def test_weinreb17_sparse_refused_as_scanpy(gen_files, pair, name):
    a, m = pair(gen_files[name])
    with pytest.raises(ValueError, match="does not support sparse") as theirs:
        sc.pp.recipe_weinreb17(m)
    with pytest.raises(ValueError) as ours:
        recipe_weinreb17(a)
    assert str(ours.value) == str(theirs.value)
    assert a.shape == (400, 600) and "log1p" not in a.uns


def test_weinreb17_too_many_pcs(dense_f32, pair):
    a, m = pair(dense_f32)
    with pytest.raises(ValueError):
        sc.pp.recipe_weinreb17(m, n_pcs=1000, svd_solver="full")
    with pytest.raises(ValueError, match="n_comps"):
        recipe_weinreb17(a, n_pcs=1000)


# -- arguments ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OURS))
def test_same_signature_as_scanpy(name):
    ours = inspect.signature(OURS[name]).parameters
    theirs = inspect.signature(THEIRS[name]).parameters
    assert list(ours) == list(theirs)
    for p, par in theirs.items():
        assert ours[p].kind == par.kind, p
        assert ours[p].default == par.default, p


@pytest.mark.parametrize("name", sorted(OURS))
@pytest.mark.parametrize("bad", [np.ones((5, 5)), sparse.csr_matrix(np.ones((5, 5))), "x.h5ad"])
def test_not_anndata_is_type_error(name, bad):
    with pytest.raises(TypeError, match="expects an AnnData"):
        OURS[name](bad)


def test_exported_from_module():
    from anndataoom.pp import _recipes

    assert sorted(_recipes.__all__) == ["recipe_seurat", "recipe_weinreb17", "recipe_zheng17"]
    for f in OURS.values():
        assert f.__doc__ and "Parameters" in f.__doc__


def test_dispersion_selection_as_scanpy(gen_files):
    """The private reproduction of filter_genes_dispersion, field by field."""
    from scanpy.preprocessing._deprecated.highly_variable_genes import filter_genes_dispersion

    from anndataoom.pp._recipes import _filter_genes_dispersion

    path = gen_files["csr_f32"]
    a, m = oom.read(path), ad.read_h5ad(path)
    for obj, mod in ((a, oom.pp), (m, sc.pp)):
        mod.filter_genes(obj, min_cells=1)
        mod.normalize_total(obj)
    cases = [dict(flavor="seurat"), dict(flavor="seurat", log=False),
             dict(flavor="seurat", n_top_genes=25), dict(flavor="seurat", n_bins=7),
             dict(flavor="cell_ranger", n_top_genes=60, log=False),
             dict(flavor="cell_ranger", n_top_genes=60)]
    for kw in cases:
        theirs = filter_genes_dispersion(m.X, **kw)
        ours = _filter_genes_dispersion(a.X, **kw)
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours.gene_subset, theirs.gene_subset, err_msg=str(kw))
        assert 0 < ours.gene_subset.sum() < a.n_vars
        for f in ("means", "dispersions", "dispersions_norm"):
            np.testing.assert_allclose(ours[f], theirs[f], rtol=1e-5, equal_nan=True,
                                       err_msg=f"{kw} {f}")
    with pytest.raises(ValueError, match="flavor"):
        _filter_genes_dispersion(a.X, flavor="seurat_v3")
