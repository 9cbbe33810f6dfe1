"""Files anndata reads that need more than gzip/lzf: HDF5 filter plugins
(through ``hdf5plugin``, as anndata with ``import hdf5plugin``), and stored
types anndataoom refuses by name (float16, a 1-D X)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import warnings

import anndata as ad
import h5py
import numpy as np
import pytest
import scipy.sparse as sp

import anndataoom as oom
from anndataoom.exceptions import AnnDataFormatError

hdf5plugin = pytest.importorskip("hdf5plugin")


def _x(n_obs=120, n_vars=30):
    return sp.random(n_obs, n_vars, density=0.2, format="csr", dtype=np.float32,
                     random_state=0)


@pytest.fixture(scope="module")
def plugin_files(tmp_path_factory):
    """``{name: path}``: anndata's writer with zstd (every element) and lz4 (dense X), and a
    file whose X/data alone is blosc-compressed (written with h5py)."""
    d = tmp_path_factory.mktemp("plugins")
    a = ad.AnnData(X=_x())
    a.obs["n"] = np.arange(a.n_obs)
    files = {"zstd": d / "zstd.h5ad", "lz4_dense": d / "lz4_dense.h5ad",
             "blosc_x": d / "blosc_x.h5ad"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.write_h5ad(files["zstd"], compression=hdf5plugin.Zstd())
        a.write_h5ad(files["lz4_dense"], compression=hdf5plugin.LZ4(), as_dense=["X"])
        a.write_h5ad(files["blosc_x"])
    with h5py.File(files["blosc_x"], "r+") as f:
        data = f["X/data"][:]
        del f["X/data"]
        f.create_dataset("X/data", data=data, chunks=(64,), **hdf5plugin.Blosc())
    return files


@pytest.mark.parametrize("name", ["zstd", "lz4_dense", "blosc_x"])
def test_plugin_compressed_files_read_as_anndata_reads_them(plugin_files, name):
    want = ad.read_h5ad(plugin_files[name])  # works here: hdf5plugin is imported
    got = oom.read(plugin_files[name])
    assert isinstance(got.X, oom.BackedArray)
    x = got.X.to_memory()
    np.testing.assert_array_equal(x.toarray() if sp.issparse(x) else x,
                                  want.X.toarray() if sp.issparse(want.X) else want.X)
    assert got.obs.equals(want.obs)
    np.testing.assert_allclose(np.asarray(got.X.sum(axis=0)).ravel(),
                               np.asarray(want.X.sum(axis=0)).ravel(), rtol=1e-6)


_WITHOUT_PLUGIN = """
import sys
sys.modules["hdf5plugin"] = None  # as on a machine without it
import anndataoom as oom
try:
    oom.read(sys.argv[1])
except Exception as e:
    print(type(e).__name__, e)
"""


@pytest.mark.parametrize(("name", "says"), [
    ("blosc_x", "AnnDataFormatError the data is compressed with HDF5 filter 32001 (blosc), "
                "which this build of HDF5 cannot decode: `pip install hdf5plugin`"),
    ("zstd", "AnnDataReadError cannot read element"),
])
def test_without_hdf5plugin_the_error_says_what_to_install(plugin_files, name, says):
    path = plugin_files[name]
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    r = subprocess.run([sys.executable, "-c", _WITHOUT_PLUGIN, str(path)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(says), r.stdout
    assert "pip install hdf5plugin" in r.stdout
    assert "/target/" not in r.stdout  # not the build machine's plugin directory alone
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_float16_is_refused_by_name(tmp_path, sparse):
    path = tmp_path / "f16.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad.AnnData(X=_x() if sparse else _x().toarray().astype(np.float16)).write_h5ad(path)
    if sparse:  # scipy has no float16 sparse matrices (anndata fails on this file)
        with h5py.File(path, "r+") as f:
            data = f["X/data"][:].astype(np.float16)
            del f["X/data"]
            f.create_dataset("X/data", data=data)
    with pytest.raises(AnnDataFormatError, match=r"2 bytes per value.*store float16 as float32"):
        oom.read(path).X.to_memory()


def test_a_one_dimensional_x_is_refused(tmp_path):
    """anndata refuses it too; it used to be read as an n × 1 matrix (and, with more
    vars, failed with a message about var)."""
    path = tmp_path / "one_d.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad.AnnData(X=np.ones((40, 1), dtype=np.float32)).write_h5ad(path)
    with h5py.File(path, "r+") as f:
        attrs = dict(f["X"].attrs)
        del f["X"]
        f.create_dataset("X", data=np.arange(40, dtype=np.float32))
        f["X"].attrs.update(attrs)
    with pytest.raises(AnnDataFormatError, match=r"must be 2-dimensional, found shape \[40\]"):
        oom.read(path)
