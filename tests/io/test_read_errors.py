"""read() fails early with typed errors naming the path, and never touches the file."""

from __future__ import annotations

import hashlib
import os
import warnings

import anndata as ad
import h5py
import numpy as np
import pytest

import anndataoom as oom
from anndataoom.exceptions import AnnDataFormatError, AnnDataReadError
from anndataoom.testing import dir_listing


def _sha(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def test_exception_hierarchy():
    assert issubclass(AnnDataReadError, OSError)
    assert issubclass(AnnDataFormatError, ValueError)
    assert oom.AnnDataReadError is AnnDataReadError


def test_missing_path(tmp_path):
    p = tmp_path / "missing.h5ad"
    with pytest.raises(FileNotFoundError, match="missing.h5ad"):
        oom.read(p)
    with pytest.raises(FileNotFoundError):
        oom.read_h5ad(str(p))


def test_directory(tmp_path):
    d = tmp_path / "adir.h5ad"
    d.mkdir()
    with pytest.raises(OSError, match="adir.h5ad") as e:
        oom.read(d)
    assert not isinstance(e.value, FileNotFoundError)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.h5ad"
    p.write_bytes(b"")
    with pytest.raises(AnnDataReadError, match="empty.h5ad"):
        oom.read(p)


def test_truncated(make_h5ad):
    path, _ = make_h5ad(name="trunc.h5ad", n_obs=300, n_vars=80, density=0.3)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="trunc.h5ad") as e:
        oom.read(path)
    assert isinstance(e.value, AnnDataReadError)


def test_random_bytes(tmp_path):
    p = tmp_path / "noise.h5ad"
    p.write_bytes(np.random.default_rng(0).bytes(10_000))
    with pytest.raises(AnnDataReadError, match="noise.h5ad"):
        oom.read(p)


def test_text_file(tmp_path):
    p = tmp_path / "text.h5ad"
    p.write_text("obs,var\n1,2\n")
    with pytest.raises(AnnDataReadError, match="text.h5ad"):
        oom.read(p)


def test_hdf5_not_anndata(tmp_path):
    p = tmp_path / "plain.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("numbers", data=np.arange(10))
        f.create_group("something")
    with pytest.raises(ValueError, match="plain.h5") as e:
        oom.read(p)
    assert isinstance(e.value, AnnDataFormatError)
    assert "AnnData" in str(e.value)


def test_bad_backed_mode(small_file):
    with pytest.raises(ValueError):
        oom.read(small_file, backed="r+")


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_read_leaves_file_and_directory_unchanged(make_h5ad, compression, fmt):
    path, _ = make_h5ad(name="keep.h5ad", fmt=fmt, compression=compression)
    before_sha, before_dir = _sha(path), dir_listing(path)
    before_mtime = os.stat(path).st_mtime_ns
    a = oom.read(path)
    a.layers["counts"] = a.X
    a.raw = a
    a.obs["x"] = 1
    a.X.sum(axis=0)
    a[::2, :5].X.to_memory()
    a._inplace_subset_obs(np.arange(10))
    a.close()
    del a
    assert _sha(path) == before_sha
    assert os.stat(path).st_mtime_ns == before_mtime
    assert dir_listing(path) == before_dir


def test_concurrent_readers(small_file):
    """Two readers and plain anndata can open the same file at once (no locking)."""
    a = oom.read(small_file)
    b = oom.read(small_file)
    mem = ad.read_h5ad(small_file)
    assert a.X.sum() == b.X.sum() == mem.X.sum()


def test_legacy_layout(tmp_path, make_h5ad):
    """Pre-0.7 files (obs/var as compound datasets, h5sparse X) read obs/var via anndata."""
    src, mem = make_h5ad(name="modern.h5ad", n_obs=30, n_vars=12, obs_extra=False)
    p = tmp_path / "legacy.h5ad"
    X = mem.X.tocsr()
    obs = np.array([(n.encode(),) for n in mem.obs_names], dtype=[("index", "S20")])
    var = np.array([(n.encode(), g.encode()) for n, g in zip(mem.var_names, mem.var["gene_ids"], strict=True)],
                   dtype=[("index", "S20"), ("gene_ids", "S20")])
    with h5py.File(p, "w") as f:
        g = f.create_group("X")
        g.attrs["h5sparse_format"] = "csr"
        g.attrs["h5sparse_shape"] = np.array(X.shape)
        g.create_dataset("data", data=X.data)
        g.create_dataset("indices", data=X.indices)
        g.create_dataset("indptr", data=X.indptr)
        f.create_dataset("obs", data=obs)
        f.create_dataset("var", data=var)
        f.create_group("uns")
    before = _sha(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's OldFormatWarning
        expected = ad.read_h5ad(p)
    a = oom.read(p)
    assert a.shape == (30, 12)
    assert list(a.obs_names) == list(expected.obs_names)
    assert list(a.var_names) == list(expected.var_names)
    assert list(a.var["gene_ids"]) == list(expected.var["gene_ids"])
    np.testing.assert_array_equal(a.X.toarray(), expected.X.toarray())
    assert _sha(p) == before


def test_bad_element_encoding(make_h5ad):
    path, _ = make_h5ad(name="badenc.h5ad", n_obs=10, n_vars=5)
    with h5py.File(path, "r+") as f:
        f["obs"].attrs["encoding-type"] = "no-such-encoding"
    with pytest.raises(AnnDataFormatError, match="badenc.h5ad") as e:
        oom.read(path)
    assert "'obs'" in str(e.value)


def test_bad_matrix_encoding(make_h5ad):
    path, _ = make_h5ad(name="badx.h5ad", n_obs=10, n_vars=5)
    with h5py.File(path, "r+") as f:
        f["X"].attrs["encoding-type"] = "coo_matrix"
    with pytest.raises(ValueError, match="badx.h5ad"):
        oom.read(path)


def test_corrupt_stored_indices(make_h5ad):
    """Out-of-range stored column indices give a ValueError naming the file, not a crash."""
    path, _ = make_h5ad(name="badidx.h5ad", n_obs=10, n_vars=5, density=0.5)
    with h5py.File(path, "r+") as f:
        idx = f["X/indices"][()]
        idx[0] = 1000
        f["X/indices"][...] = idx
    with pytest.raises(ValueError, match="badidx.h5ad"):
        oom.read(path).X.to_memory()
