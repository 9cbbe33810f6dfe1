"""anndata's own writers (``anndata.io.write_h5ad``/``write_zarr``, ``write_elem``) on an AnnDataOOM.

The oracle is anndata writing the same object loaded into memory; an
existing target must never be left truncated.
"""

from __future__ import annotations

import contextlib
import os
import warnings

import anndata as ad
import h5py
import numpy as np
import pytest
import scanpy as sc

import anndataoom as oom
import zarr
from anndataoom.io import _anndata_elems
from anndataoom.testing import assert_adata_equal, gen_h5ad


def _quiet_read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_zarr(path) if str(path).endswith(".zarr") else ad.read_h5ad(path)


def _prepared(path):
    """A lazy object with a transformed X, a raw, a counts layer, and its in-memory twin."""
    a = oom.read(path)
    a.layers["counts"] = a.X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cells without counts
        oom.pp.normalize_total(a, target_sum=1e4)
    oom.pp.log1p(a)
    a.raw = a
    a = a[::2, ::3]
    return a, a.to_memory()


@pytest.mark.parametrize("fmt", ["csr", "csc", "dense"])
@pytest.mark.parametrize("target", ["h5ad", "zarr"])
def test_anndata_io_writes_an_anndataoom(tmp_path, fmt, target, monkeypatch):
    # small blocks: the streamed paths append many times
    monkeypatch.setattr(_anndata_elems, "DENSE_BLOCK_VALUES", 64)
    monkeypatch.setattr(_anndata_elems, "CHUNK_VALUES", 50)
    src = tmp_path / "in.h5ad"
    gen_h5ad(src, 120, 40, fmt=fmt, density=0.2, seed=3)
    a, mem = _prepared(src)
    out = tmp_path / f"out.{target}"
    want = tmp_path / f"want.{target}"
    write = ad.io.write_h5ad if target == "h5ad" else ad.io.write_zarr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write(out, a)
        write(want, mem)
    got, exp = _quiet_read(out), _quiet_read(want)
    assert_adata_equal(got, exp)
    assert type(got.X) is type(exp.X)
    np.testing.assert_array_equal(got.raw.X.toarray() if fmt != "dense" else got.raw.X,
                                  exp.raw.X.toarray() if fmt != "dense" else exp.raw.X)
    for k in exp.layers:
        assert type(got.layers[k]) is type(exp.layers[k])
    if fmt != "dense":
        # a subset's stored count is unknown before the write: a 64-bit indptr, which
        # appends past 2^31 entries cannot overflow
        with (h5py.File(out, "r") if target == "h5ad"
              else contextlib.nullcontext(zarr.open_group(out, mode="r"))) as store:
            assert store["X/indptr"].dtype == store["layers/counts/indptr"].dtype == np.int64


def test_write_elem_of_a_lazy_matrix_and_empty_shapes(tmp_path):
    src = tmp_path / "in.h5ad"
    gen_h5ad(src, 30, 12, fmt="dense", seed=1)
    a = oom.read(src)
    with h5py.File(tmp_path / "elems.h5", "w") as f:
        ad.io.write_elem(f, "X", a.X)
        ad.io.write_elem(f, "no_cols", a[:, []].X)
        ad.io.write_elem(f, "no_rows", a[[]].X)
    with h5py.File(tmp_path / "elems.h5", "r") as f:
        np.testing.assert_array_equal(ad.io.read_elem(f["X"]), a.X.toarray())
        assert ad.io.read_elem(f["no_cols"]).shape == (30, 0)
        assert ad.io.read_elem(f["no_rows"]).shape == (0, 12)
    g = zarr.open_group(tmp_path / "elems.zarr", mode="w")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's own: v3 autosharding ahead
        ad.io.write_elem(g, "X", a[::-1].X)
    np.testing.assert_array_equal(ad.io.read_elem(g["X"]), a.X.toarray()[::-1])


@pytest.mark.parametrize("target", ["h5ad", "zarr"])
def test_sparse_arrays_get_chunks_for_their_data_not_for_zero_values(tmp_path, target):
    """The arrays start empty and grow by appends: chunked for 0 values they were chunks of
    one value in Zarr (a file per stored value: 170k files for 100 PBMC cells) and of 1024
    in HDF5 (4x the memory of loading X, 10x the time)."""
    src = tmp_path / "in.h5ad"
    mem = gen_h5ad(src, 3000, 200, density=0.2, seed=2)
    out = tmp_path / f"out.{target}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's own: v3 autosharding ahead
        (ad.io.write_h5ad if target == "h5ad" else ad.io.write_zarr)(out, oom.read(src))
    if target == "h5ad":
        with h5py.File(out, "r") as f:
            chunks = [f[f"X/{k}"].chunks[0] for k in ("data", "indices", "indptr")]
    else:
        g = zarr.open_group(out, mode="r")
        chunks = [g[f"X/{k}"].chunks[0] for k in ("data", "indices", "indptr")]
        n_files = sum(len(files) for _, _, files in os.walk(out / "X"))
        assert n_files < 30, n_files
    assert chunks == [_anndata_elems.CHUNK_VALUES] * 3
    assert_adata_equal(_quiet_read(out), mem)


def test_a_transposed_object_is_refused_before_the_target_is_touched(tmp_path):
    src = tmp_path / "in.h5ad"
    gen_h5ad(src, 20, 10, seed=2)
    mem = ad.read_h5ad(src)
    keep = tmp_path / "keep.zarr"
    mem.write_zarr(keep)
    t = oom.read(src).T
    with pytest.raises(oom.InMemoryRequiredError, match="transposed"):
        ad.io.write_elem(zarr.open_group(tmp_path / "other.zarr", mode="w"), "X", t.X)
    assert_adata_equal(_quiet_read(keep), mem)


def test_scanpy_write_through_anndata(tmp_path):
    src = tmp_path / "in.h5ad"
    gen_h5ad(src, 50, 20, seed=4)
    a, mem = _prepared(src)
    sc.write(tmp_path / "sc.h5ad", a)
    assert_adata_equal(_quiet_read(tmp_path / "sc.h5ad"), mem)


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_writing_onto_a_source_is_refused_and_leaves_it_intact(tmp_path, fmt):
    """anndata truncates its target before reading X: a source of the object must be refused."""
    src = tmp_path / f"in.{fmt}"
    other = tmp_path / "other.h5ad"
    gen_h5ad(tmp_path / "g.h5ad", 40, 12, seed=6)
    gen_h5ad(other, 30, 12, seed=7)
    mem = ad.read_h5ad(tmp_path / "g.h5ad")
    if fmt == "zarr":
        mem.write_zarr(src)
    else:
        mem.write_h5ad(src)
    write = ad.io.write_zarr if fmt == "zarr" else ad.io.write_h5ad
    a = oom.read(src)
    lazy = [a, a[:10], oom.concat([oom.read(other), a])]
    for obj in lazy:
        with pytest.raises(ValueError, match="reads its data from it"):
            write(src, obj)
    assert_adata_equal(_quiet_read(src), mem)
    write(tmp_path / f"copy.{fmt}", a)  # another target is written
    assert_adata_equal(_quiet_read(tmp_path / f"copy.{fmt}"), mem)
