"""``BackedArray.to_dask``: chunks from the Rust reader equal ``to_memory()``."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import anndataoom as oom

da = pytest.importorskip("dask.array", reason="dask is not installed")


def _dense(a):
    return a.toarray() if sp.issparse(a) else np.asarray(a)


def _check(x, chunks=None):
    d = x.to_dask(chunks)
    assert d.shape == x.shape and d.dtype == x.dtype
    assert sp.issparse(d._meta) == x.is_sparse
    got = d.compute()
    assert sp.issparse(got) == x.is_sparse
    np.testing.assert_array_equal(_dense(got), x.toarray())
    # float64 accumulation on both sides: scaled float32 values cancel out
    np.testing.assert_allclose(d.sum(axis=0, dtype=np.float64).compute(),
                               x.sum(axis=0, dtype=np.float64), rtol=1e-6, atol=1e-9)
    for axis in (1, 0, None):  # many chunks: dask combines the sparse chunks' partial sums
        np.testing.assert_allclose(d.mean(axis=axis, dtype=np.float64).compute(),
                                   x.mean(axis=axis, dtype=np.float64), rtol=1e-6, atol=1e-9)
    ref = x.toarray()
    for axis in (None, 0, 1):
        np.testing.assert_array_equal(np.asarray(d.max(axis=axis).compute()), ref.max(axis=axis))
        np.testing.assert_array_equal(np.asarray(d.min(axis=axis).compute()), ref.min(axis=axis))
    return d


@pytest.mark.parametrize("chunks", [None, 17])
def test_values(small_file, chunks):
    d = _check(oom.read(small_file).X, chunks)
    if chunks:
        assert d.chunks[0] == (17, 17, 17, 9)


def test_chunks_without_stored_values(make_h5ad):
    """dask skips a chunk whose ``size`` is 0; scipy's size counts stored values."""
    path, _ = make_h5ad(n_obs=60, n_vars=12, density=0.3, empty_rows=list(range(10, 30)))
    _check(oom.read(path).X, chunks=5)


def test_subset_view(small_file):
    a = oom.read(small_file)
    _check(a[5:50:2, [0, 3, 7, 11, 39]].X, chunks=6)
    _check(a.X[np.arange(60) % 3 == 0][:, 10:30], chunks=7)


def test_lazy_chain(small_file):
    a = oom.read(small_file)
    oom.pp.normalize_total(a)
    oom.pp.log1p(a)
    _check(a.X, chunks=13)
    oom.pp.scale(a, max_value=3)
    _check(a[10:, :30].X, chunks=11)


def test_astype_and_concat(small_file):
    a = oom.read(small_file)
    _check(a.X.astype(np.float64), chunks=25)
    _check(oom.concat([a[:20], a[40:]]).X, chunks=15)


def test_graph_is_a_small_picklable_description(pbmc3k_path):
    x = oom.read(pbmc3k_path).X
    d = x.to_dask(chunks=500)
    blob = pickle.dumps(dict(d.__dask_graph__()))
    assert len(blob) < 10_000  # no data, no file handle
    restored = da.Array(pickle.loads(blob), d.name, d.chunks, dtype=d.dtype, meta=d._meta)
    np.testing.assert_allclose(restored.sum(axis=0).compute(), x.sum(axis=0), rtol=1e-6)


def test_raw_oom_matrix_goes_to_processes(small_file):
    """A view built by raw ``_oom`` calls (as the 0.1.8 ``chunked_*`` API does) ships too."""
    from anndataoom import _oom

    m = _oom.lazy_log1p(_oom.open(str(small_file), "X"))
    x = oom.BackedArray(m)
    got = x.to_dask(chunks=17).compute(scheduler="processes")
    np.testing.assert_array_equal(_dense(got), _dense(x.to_memory()))


def test_matrix_in_temp_files_stays_in_this_process(tmp_path):
    """A matrix parsed into unnamed spill files of this process reads with threads only."""
    from anndataoom import _oom

    mtx = tmp_path / "m.mtx"
    mtx.write_text("%%MatrixMarket matrix coordinate integer general\n3 2 2\n1 1 4\n3 2 5\n")
    x = oom.BackedArray(_oom.read_mtx(str(mtx)))
    assert float(x.to_dask(chunks=2).sum().compute(scheduler="threads")) == 9.0
    with pytest.raises(ValueError, match="temporary files"):
        x.to_dask(chunks=2).compute(scheduler="processes")


def test_bad_chunks(small_file):
    x = oom.read(small_file).X
    with pytest.raises(ValueError, match=">= 1"):
        x.to_dask(0)
    with pytest.raises(TypeError, match="int number of rows"):
        x.to_dask((10, 10))
