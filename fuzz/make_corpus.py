"""Write the seed corpus of the ``read_h5ad`` fuzz target (small .h5ad files).

Each seed is a minimal AnnData-shaped HDF5 file exercising one storage path:
CSR/CSC, dense contiguous/chunked, gzip/lzf/shuffle/fletcher32, int64 indptr,
big-endian values, layers and raw/X.  Run: ``python fuzz/make_corpus.py``.
"""

from __future__ import annotations

import os
import sys

import h5py
import numpy as np
import scipy.sparse as sp

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "read_h5ad")


def _enc(obj, kind, version):
    obj.attrs["encoding-type"] = kind
    obj.attrs["encoding-version"] = version


def _sparse(g, key, m, fmt, **kw):
    m = sp.csr_matrix(m) if fmt == "csr" else sp.csc_matrix(m)
    sub = g.create_group(key)
    _enc(sub, f"{fmt}_matrix", "0.1.0")
    sub.attrs["shape"] = np.array(m.shape, dtype=np.int64)
    ptr_dtype = kw.pop("ptr_dtype", np.int32)
    data_dtype = kw.pop("data_dtype", np.float32)
    sub.create_dataset("data", data=m.data.astype(data_dtype), **kw)
    sub.create_dataset("indices", data=m.indices.astype(np.int32), **kw)
    sub.create_dataset("indptr", data=m.indptr.astype(ptr_dtype))


def _file(name):
    f = h5py.File(os.path.join(OUT, name), "w", libver="latest")
    _enc(f, "anndata", "0.1.0")
    f.create_group("obs")
    f.create_group("var")
    return f


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    m = (rng.random((12, 7)) < 0.4) * rng.integers(1, 9, size=(12, 7))
    m = m.astype(np.float32)
    with _file("csr_plain.h5ad") as f:
        _sparse(f, "X", m, "csr")
    with _file("csr_gzip_shuffle.h5ad") as f:
        _sparse(f, "X", m, "csr", chunks=(5,), compression="gzip", shuffle=True, ptr_dtype=np.int64)
    with _file("csc_lzf.h5ad") as f:
        _sparse(f, "X", m, "csc", chunks=(4,), compression="lzf", data_dtype=np.int32)
    with _file("csr_fletcher_be.h5ad") as f:
        _sparse(f, "X", m, "csr", chunks=(6,), fletcher32=True, data_dtype=">f8")
    with _file("dense_contiguous.h5ad") as f:
        f.create_dataset("X", data=m.astype(np.float64))
    with _file("dense_chunked_gzip.h5ad") as f:
        f.create_dataset("X", data=m.astype(np.int16), chunks=(5, 3), compression="gzip")
    with _file("layers_raw.h5ad") as f:
        _sparse(f, "X", m[:, :3], "csr", chunks=(3,), compression="gzip")
        layers = f.create_group("layers")
        _enc(layers, "dict", "0.1.0")
        layers.create_dataset("counts", data=m[:, :3], chunks=(4, 3), fletcher32=True)
        raw = f.create_group("raw")
        _enc(raw, "raw", "0.1.0")
        _sparse(raw, "X", m, "csc")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"{len(os.listdir(OUT))} seeds, {total} bytes in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
