"""start_write_h5ad: matrices streamed in a background thread, the rest at finish()."""

from __future__ import annotations

import os
import time

import anndata as ad
import h5py
import numpy as np
import pytest
import scipy.sparse as sp

import anndataoom as oom
from anndataoom.io import _write, start_write_h5ad
from anndataoom.testing import assert_adata_equal


@pytest.fixture
def outdir(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    return d


def _lazy_pipeline(src):
    a = oom.read(src)
    a.layers["counts"] = a.X
    oom.pp.normalize_total(a, target_sum=1e4)
    oom.pp.log1p(a)
    a.raw = a
    oom.pp.scale(a, max_value=10)  # dense lazy X
    return a


def test_same_file_as_write_h5ad(make_h5ad, outdir):
    src, _ = make_h5ad(n_obs=300, n_vars=40, density=0.3)
    a = _lazy_pipeline(src)
    with start_write_h5ad(a, outdir / "bg.h5ad") as pending:
        # what the run does meanwhile: metadata only, X is not read
        a.obsm["X_emb"] = np.arange(600, dtype=np.float32).reshape(300, 2)
        a.obsp["conn"] = sp.random(300, 300, density=0.01, format="csr", random_state=0)
        a.obs["label"] = ["x" if i % 3 else "y" for i in range(300)]
        a.uns["note"] = {"k": np.arange(4)}
        pending.finish(a)
    a.write_h5ad(outdir / "ref.h5ad")
    bg, ref = ad.read_h5ad(outdir / "bg.h5ad"), ad.read_h5ad(outdir / "ref.h5ad")
    assert_adata_equal(bg, ref)
    assert bg.obs["label"].dtype == "category"
    np.testing.assert_array_equal(bg.obsm["X_emb"], ref.obsm["X_emb"])
    assert (bg.obsp["conn"] != ref.obsp["conn"]).nnz == 0
    np.testing.assert_array_equal(bg.raw.X.toarray(), ref.raw.X.toarray())
    np.testing.assert_array_equal(bg.layers["counts"].toarray(), ref.layers["counts"].toarray())
    assert not [n for n in os.listdir(outdir) if n.startswith(_write.TMP_PREFIX)]


def test_replaced_matrix_is_refused(make_h5ad, outdir):
    src, _ = make_h5ad(n_obs=50, n_vars=20)
    a = oom.read(src)
    pending = start_write_h5ad(a, outdir / "x.h5ad")
    a.layers["new"] = a.X
    with pytest.raises(ValueError, match="changed after start_write_h5ad"):
        pending.finish(a)
    assert os.listdir(outdir) == []


def test_error_in_caller_aborts_and_keeps_target(make_h5ad, outdir):
    src, _ = make_h5ad(n_obs=200, n_vars=30)
    a = oom.read(src)
    target = outdir / "existing.h5ad"
    a[:5].write_h5ad(target)
    before = target.read_bytes()
    with pytest.raises(KeyError), start_write_h5ad(a, target):
        raise KeyError("the embedding failed")
    assert target.read_bytes() == before
    assert os.listdir(outdir) == ["existing.h5ad"]


def test_error_in_background_is_raised_by_finish(make_h5ad, outdir):
    src, _ = make_h5ad(n_obs=200, n_vars=30, compression="gzip", chunks=64)
    with h5py.File(src, "r") as f:  # a corrupt chunk: the Rust write fails half-way
        info = f["X/data"].id.get_chunk_info(f["X/data"].id.get_num_chunks() // 2)
    with open(src, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * info.size)
    a = oom.read(src)
    pending = start_write_h5ad(a, outdir / "x.h5ad")
    with pytest.raises(oom.AnnDataFormatError, match="corrupt deflate"):
        pending.finish(a)
    assert os.listdir(outdir) == []


def test_abort_stops_before_the_next_matrix(make_h5ad, outdir, monkeypatch):
    src, _ = make_h5ad(n_obs=400, n_vars=30)
    a = oom.read(src)
    for i in range(20):
        a.layers[f"l{i}"] = a.X
    written = []
    real = _write._oom

    class SlowSink:
        """The binding, slowed down: one matrix at a time is being written."""

        def __getattr__(self, name):
            return getattr(real, name)

        def write_h5ad_matrix(self, matrix, path, key, *args):
            time.sleep(0.02)
            real.write_h5ad_matrix(matrix, path, key, *args)
            written.append(key)

    monkeypatch.setattr(_write, "_oom", SlowSink())
    pending = start_write_h5ad(a, outdir / "x.h5ad")
    time.sleep(0.1)
    pending.abort()
    # the matrix in progress stops at its next block, no further one starts
    assert len(written) < 21
    assert os.listdir(outdir) == []


def test_bad_compression_raises_before_any_work(small_file, outdir):
    a = oom.read(small_file)
    with pytest.raises(ValueError, match="unknown compression"):
        start_write_h5ad(a, outdir / "x.h5ad", compression="zstd")
    assert os.listdir(outdir) == []


def test_bad_targets(make_h5ad, small_file, tmp_path):
    a = oom.read(small_file)
    with pytest.raises(ValueError, match="refusing"):
        start_write_h5ad(a, small_file)
    with pytest.raises(FileNotFoundError):
        start_write_h5ad(a, tmp_path / "no" / "such" / "dir.h5ad")
