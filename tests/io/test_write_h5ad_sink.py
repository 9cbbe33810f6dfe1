"""The Rust ``.h5ad`` matrix sink behind write_h5ad: layout, dtypes, compressions, index widths."""

from __future__ import annotations

import os

import anndata as ad
import h5py
import numpy as np
import pytest
import scipy.sparse as sp
from anndata.io import read_elem

import anndataoom as oom
from anndataoom import _oom
from anndataoom.io import _write
from anndataoom.testing import assert_adata_equal, assert_x_equal


def _label(compression) -> str | None:
    return None if compression is None else compression[0]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("compression", [None, ("gzip", None), ("gzip", 0), ("gzip", np.int64(9)), ("lzf", None)])
@pytest.mark.parametrize("fmt", ["csr", "dense"])
def test_dtypes_and_compressions(make_h5ad, tmp_path, fmt, dtype, compression):
    src, mem = make_h5ad(n_obs=70, n_vars=23, fmt=fmt, dtype=dtype, density=0.3)
    name, level = compression or (None, None)
    out = tmp_path / "out.h5ad"
    oom.read(src).write_h5ad(out, compression=name, compression_opts=level)
    back = ad.read_h5ad(out)
    assert_adata_equal(back, mem)
    assert_x_equal(back.X, mem.X)
    with h5py.File(out, "r") as f:
        values = f["X"] if fmt == "dense" else f["X/data"]
        assert values.dtype == np.dtype(dtype)
        assert values.compression == name
        if name == "gzip":
            assert values.compression_opts == (4 if level is None else level)
        if fmt == "csr":
            assert f["X/indices"].dtype == np.int32 and f["X/indptr"].dtype == np.int32
            assert f["X/indices"].compression == name
        assert f["X"].attrs["encoding-type"] == ("array" if fmt == "dense" else "csr_matrix")


def _pipeline(src, rows, cols):
    a = oom.read(src)[rows, cols]
    a.layers["counts"] = a.X
    oom.pp.normalize_total(a, target_sum=1e4)
    oom.pp.log1p(a)
    a.raw = a
    return a


@pytest.mark.parametrize("compression", [None, "gzip", "lzf"])
@pytest.mark.parametrize(
    "rows, cols",
    [(slice(None), slice(None)), (np.array([7, 3, 3, 150, -1]), np.arange(40) % 3 != 1),
     (slice(10, 170, 2), np.array([39, 0, 5]))],
)
@pytest.mark.filterwarnings("ignore:Some cells have zero counts")
def test_lazy_pipeline_round_trips(make_h5ad, tmp_path, compression, rows, cols):
    src, _ = make_h5ad(n_obs=180, n_vars=40, density=0.25)
    a = _pipeline(src, rows, cols)
    expected = {"X": a.X.to_memory(), "counts": a.layers["counts"].to_memory()}
    oom.pp.scale(a, max_value=10)  # a dense lazy X; raw and the layer stay sparse
    expected["scaled"] = a.X.to_memory()
    out = tmp_path / "lazy.h5ad"
    a.write_h5ad(out, compression=compression)
    back = ad.read_h5ad(out)
    assert_x_equal(back.X, expected["scaled"])
    assert_x_equal(back.raw.X, expected["X"])
    assert_x_equal(back.layers["counts"], expected["counts"])
    assert sp.issparse(back.raw.X) and sp.issparse(back.layers["counts"])
    with h5py.File(out, "r") as f:
        assert f["X"].compression == compression
        assert f["raw/X/data"].compression == compression
        assert f["raw"].attrs["encoding-type"] == "raw"
        assert f["layers"].attrs["encoding-type"] == "dict"
    assert_x_equal(oom.read(out).X, expected["scaled"])


@pytest.mark.parametrize("fmt", ["csr", "dense"])
@pytest.mark.parametrize("shape, density", [((0, 9), 0.3), ((9, 0), 0.3), ((12, 9), 0.0)])
def test_empty_matrices(make_h5ad, tmp_path, fmt, shape, density):
    src, mem = make_h5ad(n_obs=shape[0], n_vars=shape[1], fmt=fmt, density=density)
    for compression in (None, "gzip", "lzf"):
        out = tmp_path / f"empty_{compression}.h5ad"
        oom.read(src).write_h5ad(out, compression=compression)
        back = ad.read_h5ad(out)
        assert back.shape == shape
        assert_x_equal(back.X, mem.X)


def test_many_blocks_and_chunks(make_h5ad, tmp_path):
    # > 4M values: several blocks of the writer, each many chunks, last chunk partial
    src, mem = make_h5ad(n_obs=5003, n_vars=1001, fmt="dense", density=0.5, obs_extra=False)
    a = oom.read(src)
    oom.pp.log1p(a)
    expected = a.X.to_memory()
    out = tmp_path / "big.h5ad"
    a.write_h5ad(out, compression="gzip", compression_opts=1)
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["X"][:], expected)
        assert f["X"].chunks[1] == 1001


def _elem(path, key="X"):
    with h5py.File(path, "r") as f:
        return read_elem(f[key]), {k: f[key][k].dtype for k in ("indices", "indptr")}


@pytest.mark.parametrize(
    "limit, indices, indptr",
    [(2**31, np.int32, np.int32), (20 * 11 + 1, np.int32, np.int32),
     (20 * 11, np.int32, np.int64), (11, np.int64, np.int64)],
)
def test_index_dtype_rule(make_h5ad, tmp_path, limit, indices, indptr):
    # the Python writer's rule: int64 indices from 2^31 columns, int64 indptr
    # from 2^31 rows × columns; the threshold is lowered so no 2^31 file is needed
    src, mem = make_h5ad(n_obs=20, n_vars=11, density=0.4)
    out = tmp_path / "idx.h5ad"
    _oom.write_h5ad_matrix(oom.read(src).X.matrix, out, "X", "gzip", chunk=7,
                           index32_limit=limit)
    back, dtypes = _elem(out)
    assert dtypes == {"indices": np.dtype(indices), "indptr": np.dtype(indptr)}
    assert_x_equal(back, mem.X)


def test_small_chunks_and_lzf_fallback(tmp_path):
    # random float64 does not shrink under LZF: those chunks are stored raw
    # with the filter's bit set in their mask, as h5py's filter does
    rng = np.random.default_rng(0)
    x = rng.random((37, 5))
    src = tmp_path / "rand.h5ad"
    ad.AnnData(x).write_h5ad(src)
    out = tmp_path / "o.h5ad"
    _oom.write_h5ad_matrix(oom.read(src).X.matrix, out, "layers/x", "lzf", chunk=10)
    with h5py.File(out, "r") as f:
        ds = f["layers/x"]
        assert ds.chunks == (2, 5) and ds.compression == "lzf"
        assert ds.id.get_chunk_info(0).filter_mask == 1
        np.testing.assert_array_equal(ds[:], x)
        assert dict(f["layers"].attrs) == {}  # the parent group is left to the caller


@pytest.mark.parametrize(
    "compression, opts, match",
    [("zstd", None, "unknown compression"), ("gzip", 10, "0 to 9"), ("gzip", "9", "0 to 9"),
     ("lzf", 3, "no compression_opts")],
)
def test_bad_compression(make_h5ad, tmp_path, compression, opts, match):
    src, _ = make_h5ad(n_obs=10, n_vars=5)
    a = oom.read(src)
    outdir = tmp_path / "out"
    outdir.mkdir()
    with pytest.raises(ValueError, match=match):
        a.write_h5ad(outdir / "bad.h5ad", compression=compression, compression_opts=opts)
    if not isinstance(opts, str):
        with pytest.raises(ValueError, match=match):
            _oom.write_h5ad_matrix(a.X.matrix, outdir / "bad.h5ad", "X", compression, opts)
    assert os.listdir(outdir) == []


def test_sink_errors_are_typed(make_h5ad, tmp_path):
    m = oom.read(make_h5ad(n_obs=10, n_vars=5)[0]).X.matrix
    with pytest.raises(FileNotFoundError, match="cannot write in '.*no': No such file"):
        _oom.write_h5ad_matrix(m, tmp_path / "no" / "dir.h5ad", "X")
    out = tmp_path / "twice.h5ad"
    _oom.write_h5ad_matrix(m, out, "X")
    with pytest.raises(OSError, match="cannot write HDF5 element 'X'"):
        _oom.write_h5ad_matrix(m, out, "X")
    with pytest.raises(ValueError, match="index32_limit"):
        _oom.write_h5ad_matrix(m, tmp_path / "l.h5ad", "X", index32_limit=2**31 + 1)


def test_only_in_memory_matrices(make_h5ad, tmp_path):
    # nothing lazy: h5py creates the file itself
    src, mem = make_h5ad(n_obs=15, n_vars=6)
    a = oom.read(src)
    a.X = mem.X.toarray()
    out = tmp_path / "mem.h5ad"
    a.write_h5ad(out, compression="lzf")
    assert_adata_equal(ad.read_h5ad(out), mem)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(_write.TMP_PREFIX)]
