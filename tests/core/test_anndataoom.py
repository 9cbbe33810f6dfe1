"""AnnDataOOM as an AnnData: identity, repr, vectors, copies, chunks, lifecycle."""

from __future__ import annotations

import os
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import anndataoom as oom
from anndataoom import _oom
from anndataoom.testing import FORMATS, assert_adata_equal, assert_x_equal, dense


def test_isinstance_and_flags(small_file):
    a = oom.read(small_file)
    assert isinstance(a, ad.AnnData)
    assert isinstance(a, oom.AnnDataOOM)
    assert a._is_oom is True and oom.AnnDataOOM._is_oom is True
    assert oom.is_oom(a)
    assert not oom.is_oom(ad.read_h5ad(small_file))
    assert not oom.is_oom(None)
    assert a.is_view is False
    assert "snapatac2" not in type(a).__module__ and "pyanndata" not in type(a).__module__
    assert isinstance(a.X, oom.BackedArray)
    assert isinstance(a.layers, oom.BackedLayers)
    assert a.shape == (60, 40) and a.n_obs == 60 and a.n_vars == 40 and len(a) == 60
    assert isinstance(a.obs_names, pd.Index) and isinstance(a.var_names, pd.Index)


def test_matches_anndata_on_read(small_file):
    a = oom.read(small_file)
    assert_adata_equal(a, ad.read_h5ad(small_file))
    mem = ad.read_h5ad(small_file)
    assert a.uns["note"] == mem.uns["note"]
    assert a.uns["gen_params"]["seed"] == mem.uns["gen_params"]["seed"]


def test_obs_var_uns_by_reference(small_file):
    a = oom.read(small_file)
    assert type(a.obs) is pd.DataFrame and type(a.var) is pd.DataFrame
    a.obs["new"] = np.arange(a.n_obs)
    assert "new" in a.obs.columns
    a.var["flag"] = a.var_names.str.startswith("MT-")
    assert a.var["flag"].sum() == a.var["mt"].sum()
    # a dict (a subclass that refuses writes from refused scanpy functions); omicverse
    # only rejects type names ending in "PyElemCollection"
    assert isinstance(a.uns, dict) and not type(a.uns).__name__.endswith("PyElemCollection")
    a.uns["status"] = {}
    a.uns["status"]["qc"] = True
    assert a.uns["status"]["qc"] is True
    assert a.uns is a.uns
    a.obsm["X_new"] = np.zeros((a.n_obs, 2))
    assert "X_new" in a.obsm
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert a.obsm_keys() == list(a.obsm.keys())
    a.var_names_make_unique()


def test_repr(small_file):
    a = oom.read(small_file)
    a.layers["counts"] = a.X
    r = repr(a)
    assert "AnnDataOOM" in r and "60 × 40" in r
    assert small_file.name in r and "on disk" in r
    assert a.X.source_format in r and str(a.X.dtype) in r
    assert "obs: 'batch'" in r and "obsm: 'X_rand'" in r and "layers: 'counts'" in r
    if a.X.format == "csr" and a.X.source_format == "csr_matrix":
        assert "density" in r
    h = a._repr_html_()
    assert h.startswith("<div>") and "AnnDataOOM" in h and small_file.name in h
    sub = a[:5]
    assert "subset" in repr(sub)
    X2 = oom.TransformedBackedArray(a.X.matrix, transforms=("normalize_total", "log1p"))
    a.X = X2
    assert "normalize_total → log1p" in repr(a)
    a.close()
    assert "closed" in repr(a)


@pytest.mark.parametrize("layer", [None, "counts"])
def test_obs_vector_var_vector(small_file, layer):
    a = oom.read(small_file)
    mem = ad.read_h5ad(small_file)
    if layer:
        a.layers[layer] = a.X
        mem.layers[layer] = mem.X.copy()
    for gene in (a.var_names[0], a.var_names[17], "MT-ND1"):
        got = a.obs_vector(gene, layer=layer)
        exp = mem.obs_vector(gene, layer=layer)
        assert got.shape == (a.n_obs,) and got.dtype == exp.dtype
        np.testing.assert_array_equal(got, exp)
    np.testing.assert_array_equal(a.obs_vector("score"), mem.obs_vector("score"))
    np.testing.assert_array_equal(a.obs_vector("batch"), mem.obs_vector("batch"))
    for cell in (a.obs_names[0], a.obs_names[-1]):
        np.testing.assert_array_equal(a.var_vector(cell, layer=layer),
                                      mem.var_vector(cell, layer=layer))
    np.testing.assert_array_equal(a.var_vector("gene_ids"), mem.var_vector("gene_ids"))
    with pytest.raises(KeyError):
        a.obs_vector("nope")
    with pytest.raises(KeyError):
        a.var_vector("nope")


def test_raw(small_file):
    a = oom.read(small_file)
    mem = ad.read_h5ad(small_file)
    assert a.raw is None
    a.raw = a
    mem.raw = mem
    assert a.raw.shape == mem.raw.shape
    assert isinstance(a.raw.X, oom.BackedArray)
    assert list(a.raw.var_names) == list(mem.raw.var_names)
    g = a.var_names[3]
    np.testing.assert_array_equal(a.raw.obs_vector(g), mem.raw.obs_vector(g))
    np.testing.assert_array_equal(a.raw.var_vector(a.obs_names[2]),
                                  mem.raw.var_vector(mem.obs_names[2]))
    # later changes of var / X do not touch the frozen raw
    a._inplace_subset_var(np.arange(5))
    assert a.raw.n_vars == 40
    sub = a.raw[:, [g]]
    assert_x_equal(sub.X, mem.raw[:, [g]].X)
    r = a.raw.to_adata()
    assert isinstance(r, oom.AnnDataOOM) and r.shape == (60, 40)
    assert_x_equal(r.X, mem.raw.X)
    c = a.raw.copy()
    assert c.shape == a.raw.shape
    del a.raw
    assert a.raw is None


def test_x_setter(small_file):
    a = oom.read(small_file)
    mem = ad.read_h5ad(small_file)
    lazy = a.X
    a.X = lazy[:, :]                 # lazy replacement
    assert isinstance(a.X, oom.BackedArray)
    a.X = lazy.matrix                # a bare Matrix is wrapped
    assert isinstance(a.X, oom.BackedArray)
    dense_x = np.ones(a.shape, dtype=np.float32)
    a.X = dense_x                    # in memory, kept as is
    assert a.X is dense_x
    s = a[[1, 0]]
    np.testing.assert_array_equal(s.X, dense_x[[1, 0]])
    a.X = sp.csr_matrix(dense_x)
    assert sp.issparse(a.X)
    with pytest.raises(ValueError):
        a.X = np.ones((3, 3))
    with pytest.raises(ValueError):
        a.X = lazy[:5]
    a.X = lazy
    assert_x_equal(a.X, mem.X)


def test_layers(small_file):
    a = oom.read(small_file)
    X = a.X
    a.layers["counts"] = a.X
    assert a.layers["counts"] is X  # a reference, never materialised
    assert "counts" in a.layers and list(a.layers.keys()) == ["counts"]
    a.X = X[:, ::-1][:, ::-1]
    assert a.layers["counts"] is X
    a.layers["mem"] = np.zeros(a.shape)
    with pytest.raises(ValueError):
        a.layers["bad"] = X[:3]
    with pytest.raises(KeyError):
        a.layers["missing"]
    del a.layers["mem"]
    assert len(a.layers) == 1
    assert "counts" in repr(a.layers)


def test_copy_independent(small_file):
    a = oom.read(small_file)
    a.uns["nested"] = {"k": [1, 2]}
    c = a.copy()
    assert isinstance(c, oom.AnnDataOOM) and c is not a
    c.obs["x"] = 1
    c.var.loc[c.var_names[0], "gene_ids"] = "changed"
    c.uns["nested"]["k"].append(3)
    c.obsm["X_rand"][0, 0] = 1e9
    c.layers["counts"] = c.X
    c._inplace_subset_obs(np.arange(3))
    assert "x" not in a.obs.columns
    assert a.var["gene_ids"].iloc[0] != "changed"
    assert a.uns["nested"]["k"] == [1, 2]
    assert a.obsm["X_rand"][0, 0] != 1e9
    assert "counts" not in a.layers
    assert a.shape == (60, 40)
    assert_adata_equal(a, ad.read_h5ad(small_file))
    # and the other way round
    a.obs["y"] = 2
    assert "y" not in c.obs.columns


def test_copy_to_file(small_file, tmp_path):
    a = oom.read(small_file)
    c = a.copy(filename=tmp_path / "copy.h5ad")
    assert isinstance(c, oom.AnnDataOOM)
    assert c.X.path == str(tmp_path / "copy.h5ad")
    assert_adata_equal(c, ad.read_h5ad(small_file))


def test_to_memory(small_file):
    a = oom.read(small_file)
    a.layers["counts"] = a.X
    a.raw = a
    a.obsp["d"] = sp.random(60, 60, density=0.1, format="csr", random_state=0)
    m = a.to_memory()
    assert type(m) is ad.AnnData
    mem = ad.read_h5ad(small_file)
    mem.layers["counts"] = mem.X
    assert_adata_equal(m, mem)
    assert type(m.X) is type(a.X.to_memory())
    assert m.raw is not None and m.raw.shape == (60, 40)
    assert_x_equal(m.raw.X, mem.X)
    assert (m.obsp["d"] != a.obsp["d"]).nnz == 0
    m.obs["z"] = 0
    assert "z" not in a.obs
    t = a.to_adata()
    assert type(t) is ad.AnnData
    assert_adata_equal(t, mem)


def test_chunked_x(small_file):
    a = oom.read(small_file)
    full = dense(ad.read_h5ad(small_file).X)
    n = 0
    for block, start, end in a.chunked_X(7):   # anndata's order
        np.testing.assert_array_equal(dense(block), full[start:end])
        n += end - start
    assert n == 60
    mem_chunks = [(s, e) for _, s, e in ad.read_h5ad(small_file).chunked_X(7)]
    assert [(s, e) for _, s, e in a.chunked_X(7)] == mem_chunks
    assert sum(e - s for _, s, e in a.chunked_X()) == 60
    assert [(s, e) for s, e, _ in a.X.chunked(25)] == [(0, 25), (25, 50), (50, 60)]


def test_context_manager_and_close(small_file):
    with oom.read(small_file) as a:
        assert a.X.shape == (60, 40)
        sub = a[:10]
    assert a.is_closed
    with pytest.raises(ValueError):
        _ = a.X
    with pytest.raises(ValueError):
        _ = a[:3].X
    assert sub.X.to_memory().shape == (10, 40)  # derived objects stay usable
    a.close()  # idempotent
    assert a.obs.shape[0] == 60


def test_to_df(small_file):
    a = oom.read(small_file)
    df = a.to_df()
    assert df.shape == (60, 40)
    np.testing.assert_array_equal(df.values, dense(ad.read_h5ad(small_file).X))


def test_constructor_defaults(small_file):
    m = _oom.open(str(small_file), "X")
    a = oom.AnnDataOOM(m)
    assert a.shape == (60, 40)
    assert list(a.obs_names[:2]) == ["0", "1"]
    with pytest.raises(ValueError):
        oom.AnnDataOOM(m, obs=pd.DataFrame(index=["a", "b"]))
    b = oom.AnnDataOOM(obs=pd.DataFrame(index=["a", "b"]), var=pd.DataFrame(index=["g"]))
    assert b.shape == (2, 1) and b.X is None


def test_oom_guard(small_file):
    calls = {}

    @oom.oom_guard(materialize=True, result_keys_obs=["S"], result_keys_uns=["*"])
    def fn(adata, value=1.0):
        calls["type"] = type(adata)
        adata.obs["S"] = np.asarray(adata.X.sum(axis=1)).ravel() * value
        adata.obs["ignored"] = 0
        adata.uns["result"] = {"v": value}
        return "done"

    a = oom.read(small_file)
    with pytest.warns(oom.OOMMaterializeWarning, match="into memory on purpose"):
        assert fn(a, value=2.0) == "done"
    assert calls["type"] is ad.AnnData
    np.testing.assert_allclose(a.obs["S"].to_numpy(), a.X.sum(axis=1) * 2.0, rtol=1e-6)
    assert "ignored" not in a.obs
    assert a.uns["result"] == {"v": 2.0}
    assert "note" in a.uns
    with pytest.warns(oom.OOMMaterializeWarning, match="into memory on purpose"):
        assert fn(adata=a) == "done"
    mem = ad.read_h5ad(small_file)
    assert fn(mem) == "done" and calls["type"] is ad.AnnData and "S" in mem.obs
    assert fn._oom_guarded is True

    @oom.oom_guard(materialize=False, suggest="Use oom.pp.x instead.")
    def not_supported(adata):
        return 1

    with pytest.raises(NotImplementedError, match="oom.pp.x"):
        not_supported(a)
    assert not_supported(mem) == 1


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_sum_mean_through_adata(make_h5ad, fmt, dtype):
    path, mem = make_h5ad(n_obs=45, n_vars=22, fmt=fmt, dtype=dtype)
    a = oom.read(path)
    for axis in (0, 1):
        np.testing.assert_allclose(a.X.sum(axis=axis), np.asarray(mem.X.sum(axis=axis)).ravel(),
                                   rtol=1e-6)
        np.testing.assert_allclose(a.X.mean(axis=axis),
                                   np.asarray(mem.X.astype(np.float64).mean(axis=axis)).ravel(),
                                   rtol=1e-6)
    sub = a[a.obs["batch"] == "batch_a", a.var["mt"].to_numpy()]
    esub = mem[mem.obs["batch"] == "batch_a", mem.var["mt"].to_numpy()]
    np.testing.assert_allclose(sub.X.sum(axis=0), np.asarray(esub.X.sum(axis=0)).ravel(),
                               rtol=1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
def test_zero_and_one_row_files(make_h5ad, fmt):
    for n in (0, 1):
        path, mem = make_h5ad(n_obs=n, n_vars=9, fmt=fmt)
        a = oom.read(path)
        assert a.shape == (n, 9)
        assert_adata_equal(a, ad.read_h5ad(path))
        assert a.to_memory().shape == (n, 9)
        assert list(a.chunked_X(4)) == [] if n == 0 else len(list(a.chunked_X(4))) == 1


def test_pbmc3k_object(pbmc3k_path):
    mem = ad.read_h5ad(pbmc3k_path)
    with oom.read(pbmc3k_path) as a:
        assert a.shape == (2700, 32738)
        assert "pbmc3k_raw.h5ad" in repr(a)
        np.testing.assert_array_equal(a.obs_vector("LYZ"), mem.obs_vector("LYZ"))
        np.testing.assert_array_equal(a.var_vector(a.obs_names[10]),
                                      mem.var_vector(mem.obs_names[10]))
        a.layers["counts"] = a.X
        a.raw = a
        keep = np.asarray(a.X.sum(axis=1) > 2000)
        mem = mem[keep].copy()
        a._inplace_subset_obs(keep)
        assert a.n_obs == mem.n_obs
        assert_x_equal(a.X, mem.X)
        assert a.raw.n_obs == mem.n_obs
        genes = a.var_names[np.asarray(a.X.sum(axis=0)) > 0]
        a._inplace_subset_var(genes)
        assert_x_equal(a.layers["counts"], mem[:, genes].X)
        np.testing.assert_allclose(a.X.mean(axis=0),
                                   np.asarray(mem[:, genes].X.astype(float).mean(axis=0)).ravel(),
                                   rtol=1e-6)


def test_read_unknown_kwargs_raise(small_file):
    # as anndata.read_h5ad (issue 14: they used to be ignored with a warning)
    with pytest.raises(TypeError, match="cache"):
        oom.read(small_file, backed="r", cache=True)
    assert oom.read(small_file, backed="r").shape == (60, 40)


@pytest.fixture
def with_pca(make_h5ad):
    path, _ = make_h5ad(n_obs=120, n_vars=30, density=0.3)
    a = oom.read(path)
    a.obsm["X_pca"] = np.random.default_rng(0).normal(size=(a.n_obs, 10)).astype(np.float32)
    return a, path


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_scanpy_graph_and_plots(with_pca):
    """scanpy's graph tools and plots accept the object (X is never materialised)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scanpy as sc

    a, path = with_pca
    sc.pp.neighbors(a, n_neighbors=10)
    assert sp.issparse(a.obsp["connectivities"])
    sc.tl.leiden(a, flavor="igraph", n_iterations=2)
    assert "leiden" in a.obs
    a.obsm["X_umap"] = a.obsm["X_pca"][:, :2].copy()
    gene = a.var_names[4]
    df = sc.get.obs_df(a, [gene, "leiden"])
    np.testing.assert_array_equal(df[gene].to_numpy(), ad.read_h5ad(path).obs_vector(gene))
    sc.pl.umap(a, color=[gene, "leiden"], show=False)
    sc.pl.violin(a, keys=[gene], groupby="leiden", show=False)
    a.raw = a
    sc.pl.umap(a, color=gene, show=False)
    sc.pl.dotplot(a, [gene], groupby="leiden", show=False)
    plt.close("all")
    assert isinstance(a.X, oom.BackedArray)


@pytest.mark.slow
def test_scanpy_umap(with_pca):
    import scanpy as sc

    a, _ = with_pca
    sc.pp.neighbors(a, n_neighbors=10)
    sc.tl.umap(a)
    assert a.obsm["X_umap"].shape == (a.n_obs, 2)


def test_copy_module(small_file):
    import copy

    a = oom.read(small_file)
    for c in (copy.copy(a), copy.deepcopy(a)):
        assert isinstance(c, oom.AnnDataOOM) and c is not a
        c.obs["k"] = 1
        assert "k" not in a.obs
        assert_x_equal(c.X, a.X)
    X2 = copy.deepcopy(a.X)
    assert isinstance(X2, oom.BackedArray) and X2.shape == a.X.shape
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(a)


def test_constructor_mappings(small_file):
    m = _oom.open(str(small_file), "X")
    a = oom.AnnDataOOM(m, obs={"c": np.arange(60)}, var={"g": np.arange(40)})
    assert a.shape == (60, 40) and list(a.obs.columns) == ["c"] and list(a.var.columns) == ["g"]
    with pytest.raises(ValueError):
        oom.AnnDataOOM(m, obs={"c": np.arange(3)})


def test_reopen_after_in_place_rewrite(make_h5ad):
    """An empty matrix kept open must not make a later read of a file rewritten
    in place at the same path see the old metadata."""
    path, _ = make_h5ad(name="rewritten.h5ad", n_obs=0, n_vars=0, fmt="dense")
    old = oom.read(path)
    assert old.shape == (0, 0)
    from anndataoom.testing import gen_h5ad

    mem = gen_h5ad(path, n_obs=5, n_vars=3, fmt="dense")  # h5py truncates the same inode
    new = oom.read(path)
    assert new.shape == (5, 3)
    assert_x_equal(new.X, mem.X)
    del old


def test_backed_mode_and_loom_writes_are_refused_before_touching_disk(small_file, tmp_path):
    a = oom.read(small_file)
    before = sorted(os.listdir(tmp_path))
    assert a.filename is None and not a.isbacked
    with pytest.raises(NotImplementedError, match="backed mode"):
        a.filename = tmp_path / "x.h5ad"
    with pytest.raises(oom.InMemoryRequiredError, match=r"\.loom"):
        a.write_loom(tmp_path / "x.loom")
    assert sorted(os.listdir(tmp_path)) == before
