"""oom.read_loom against anndata.io.read_loom on files written by loompy."""

from __future__ import annotations

import shutil

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import anndataoom as oom

loompy = pytest.importorskip("loompy")


@pytest.fixture
def loom_file(tmp_path):
    """A 230 cells × 150 genes loom (several 64 × 64 chunks) with two layers and attributes."""
    rng = np.random.default_rng(3)
    n_genes, n_cells = 150, 230
    m = (rng.poisson(0.4, (n_genes, n_cells))).astype(np.float32)
    layers = {"": m, "spliced": m * 2, "unspliced": rng.poisson(0.2, m.shape).astype(np.float64)}
    row_attrs = {"Gene": np.array([f"g{i}" for i in range(n_genes)]),
                 "score": rng.normal(size=n_genes)}
    col_attrs = {"CellID": np.array([f"c{i}" for i in range(n_cells)]),
                 "batch": np.array(["a", "b"] * (n_cells // 2)),
                 "umap": rng.normal(size=(n_cells, 2)),
                 "u1": rng.normal(size=n_cells), "u2": rng.normal(size=n_cells),
                 "const": np.ones(n_cells)}
    path = tmp_path / "x.loom"
    loompy.create(str(path), layers, row_attrs, col_attrs)
    return path


def assert_same(ours, ref) -> None:
    assert isinstance(ours.X, oom.BackedArray)
    mem = ours.to_memory()
    assert mem.X.dtype == ref.X.dtype
    np.testing.assert_array_equal(np.asarray(mem.X), ref.X.toarray() if sp.issparse(ref.X) else ref.X)
    pd.testing.assert_frame_equal(mem.obs, ref.obs)
    pd.testing.assert_frame_equal(mem.var, ref.var)
    assert sorted(mem.layers) == sorted(ref.layers)
    for k in ref.layers:
        r = ref.layers[k]
        np.testing.assert_array_equal(np.asarray(mem.layers[k]), r.toarray() if sp.issparse(r) else r)
    assert sorted(mem.obsm) == sorted(ref.obsm)
    for k in ref.obsm:
        np.testing.assert_array_equal(mem.obsm[k], ref.obsm[k])
    assert mem.uns == ref.uns


@pytest.mark.parametrize("kw", [
    {},
    {"sparse": False},
    {"X_name": "", "dtype": "float64"},
    {"cleanup": True, "obsm_mapping": {"X_u": ["u1", "u2"]}},
])
def test_loompy_files_read_as_anndata(loom_file, kw):
    assert_same(oom.read_loom(loom_file, **kw), anndata.io.read_loom(loom_file, **kw))


def test_blocks_are_column_ranges(loom_file):
    a = oom.read_loom(loom_file, X_name="")
    ref = anndata.io.read_loom(loom_file, X_name="")
    rows = np.array([229, 3, 64, 65, 3])
    np.testing.assert_array_equal(a[rows, 10:100].X.toarray(), ref[rows, 10:100].X.toarray())
    np.testing.assert_allclose(a.X.sum(axis=1), np.asarray(ref.X.sum(axis=1)).ravel(), rtol=1e-6)
    oom.pp.normalize_total(a)
    oom.pp.log1p(a)
    import scanpy as sc

    sc.pp.normalize_total(ref)
    sc.pp.log1p(ref)
    np.testing.assert_allclose(a.X.toarray(), ref.X.toarray(), rtol=1e-5, atol=1e-6)


def test_uncompressed_contiguous_matrix(tmp_path, loom_file):
    """A loom whose /matrix is contiguous (not chunked) reads column ranges by positioned reads."""
    path = tmp_path / "contig.loom"
    shutil.copy(loom_file, path)
    with h5py.File(path, "r+") as f:
        m = f["matrix"][()]
        del f["matrix"]
        f.create_dataset("matrix", data=m)
    ref = anndata.io.read_loom(path, X_name="")
    np.testing.assert_array_equal(oom.read_loom(path, X_name="").X.toarray(), ref.X.toarray())


# -- bad input ----------------------------------------------------------------

def test_bad_files(tmp_path, loom_file):
    with pytest.raises(FileNotFoundError):
        oom.read_loom(tmp_path / "none.loom")
    junk = tmp_path / "junk.loom"
    junk.write_text("no")
    with pytest.raises(oom.AnnDataReadError):
        oom.read_loom(junk)
    empty = tmp_path / "empty.loom"
    with h5py.File(empty, "w") as f:
        f["x"] = 1
    with pytest.raises(oom.AnnDataFormatError, match="matrix"):
        oom.read_loom(empty)
    cut = tmp_path / "cut.loom"
    data = loom_file.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises((oom.AnnDataReadError, oom.AnnDataFormatError)):
        oom.read_loom(cut).X.toarray()


def test_wrong_shapes(tmp_path, loom_file):
    path = tmp_path / "short.loom"
    shutil.copy(loom_file, path)
    with h5py.File(path, "r+") as f:
        ids = f["col_attrs/CellID"][:-1]
        del f["col_attrs/CellID"]
        f["col_attrs/CellID"] = ids
    with pytest.raises((oom.AnnDataFormatError, ValueError)):
        oom.read_loom(path)


def test_rebuilt_from_its_plan(loom_file):
    """Workers (dask.distributed) rebuild the lazy X from its pickled plan."""
    import pickle

    a = oom.read_loom(loom_file)
    back = pickle.loads(pickle.dumps(a.X))
    np.testing.assert_array_equal(back.to_memory(), a.X.to_memory())
    ref = anndata.io.read_loom(loom_file)
    np.testing.assert_allclose(float(a.X.to_dask(chunks=100).sum().compute()), ref.X.sum(), rtol=1e-6)
