"""Cell Ranger ``.h5`` files of every stored dtype: the counts and indices are
converted while they are read (straight into the block's dtype), and must
give what scanpy gives — for every storage layout the reader decodes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp

import anndataoom as oom
from anndataoom.testing import write_10x_h5

COUNTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64"]
#: (compression, chunks): uncompressed chunks read in place, gzip chunks
#: decoded, and a contiguous dataset
LAYOUTS = {"chunked": (None, (7,)), "gzip": ("gzip", (7,)), "contiguous": (None, None)}


def _matrix(dtype: str) -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    X = sp.random(40, 300, density=0.2, format="csr", random_state=1, dtype=np.float64)
    hi = np.iinfo(dtype).max if np.dtype(dtype).kind in "iu" else 1e6
    X.data = rng.integers(1, min(hi, 100), X.nnz).astype(np.float64)
    if np.dtype(dtype).itemsize >= 4 and np.dtype(dtype).kind in "iu":
        # values float32 rounds (as numpy's astype does)
        X.data[:5] = [16_777_217, 16_777_219, 2**31 - 1 if dtype != "uint32" else 2**32 - 1,
                      123_456_789, 1]
    return X


def _write(path, X, counts: str, indices: str, layout: str) -> None:
    ones = sp.csr_matrix((np.ones(X.nnz), X.indices, X.indptr), shape=X.shape)
    write_10x_h5(path, ones, [f"c{i}-1" for i in range(X.shape[0])],
                 [f"g{j}" for j in range(X.shape[1])], compression=None)
    compression, chunks = LAYOUTS[layout]
    with h5py.File(path, "r+") as f:
        g = f["matrix"]
        for name, dtype, values in [("data", counts, X.data), ("indices", indices, X.indices)]:
            del g[name]
            g.create_dataset(name, data=values.astype(dtype), chunks=chunks,
                             compression=compression)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("counts", COUNTS)
def test_counts_of_every_dtype_read_as_scanpy(tmp_path, counts, layout):
    X = _matrix(counts)
    path = tmp_path / "m.h5"
    _write(path, X, counts, "int64", layout)
    ref = sc.read_10x_h5(path)
    a = oom.read_10x_h5(path)
    assert a.X.dtype == ref.X.dtype  # scanpy casts int32 to float32, keeps the others
    got = a.X.to_memory()
    assert got.dtype == ref.X.dtype
    # bit for bit (int32 counts past 2^24 round as numpy's astype rounds them)
    np.testing.assert_array_equal(got.toarray(), ref.X.toarray())
    # row blocks that are not runs, and a column subset
    rows = np.array([7, 3, 3, 39, 0])
    np.testing.assert_array_equal(a[rows, 5:250].X.toarray(), ref[rows, 5:250].X.toarray())
    # the first transform reads the converted values: same as scanpy's
    oom.pp.normalize_total(a, target_sum=1e4)
    oom.pp.log1p(a)
    sc.pp.normalize_total(ref, target_sum=1e4)
    sc.pp.log1p(ref)
    mem = a.X.to_memory()
    assert mem.dtype == ref.X.dtype
    np.testing.assert_allclose(mem.toarray(), ref.X.toarray(), rtol=1e-6)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("indices", ["int8", "int16", "int32", "int64", "uint16", "uint32",
                                     "uint64"])
def test_indices_of_every_integer_dtype(tmp_path, indices, layout):
    X = _matrix("int32")
    X = X[:, :100].tocsr()  # int8 indices hold < 128 columns
    path = tmp_path / "m.h5"
    _write(path, X, "int32", indices, layout)
    got = oom.read_10x_h5(path).X.to_memory()
    assert (got != sc.read_10x_h5(path).X).nnz == 0


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("dtype", "bad"), [("int64", 2**33), ("int64", -1), ("int64", 300),
                                            ("uint64", 2**64 - 1), ("uint32", 2**31)])
def test_indices_out_of_range_are_typed_errors(tmp_path, dtype, bad, layout):
    X = _matrix("int32")
    path = tmp_path / "m.h5"
    _write(path, X, "int32", "int64", layout)
    with h5py.File(path, "r+") as f:
        i = f["matrix/indices"][:].astype(dtype)
        i[X.indptr[9] + 1] = bad  # row 9
        compression, chunks = LAYOUTS[layout]
        del f["matrix/indices"]
        f.create_dataset("matrix/indices", data=i, chunks=chunks, compression=compression)
    a = oom.read_10x_h5(path)  # indices are read with the rows, not at open
    np.testing.assert_array_equal(a[:9].X.toarray(), X[:9].toarray().astype(np.float32))
    with pytest.raises(ValueError, match=f"stored index {bad} is out of range"):
        a.X.to_memory()
    with pytest.raises(ValueError, match="out of range"):
        a[[12, 9]].X.toarray()
