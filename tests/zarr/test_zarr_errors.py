"""Bad Zarr input: typed errors, never a panic, and the store is left untouched."""

from __future__ import annotations

import json
import os

import anndata as ad
import pytest
from _stores import small_anndata

import anndataoom as oom
from anndataoom.exceptions import AnnDataFormatError, AnnDataReadError
from anndataoom.testing import dir_listing


def _store(tmp_path, fmt=3):
    with ad.settings.override(zarr_write_format=fmt, auto_shard_zarr_v3=False):
        small_anndata("csr").write_zarr(tmp_path / "a.zarr")
    return tmp_path / "a.zarr"


def test_directory_that_is_not_zarr(tmp_path):
    (tmp_path / "d.zarr").mkdir()
    with pytest.raises(AnnDataReadError, match="not a Zarr store"):
        oom.read(tmp_path / "d.zarr")


def test_zarr_group_that_is_not_anndata(tmp_path):
    import zarr

    zarr.open_group(tmp_path / "g.zarr", mode="w", zarr_format=3).create_group("other")
    with pytest.raises(AnnDataFormatError, match="not AnnData"):
        oom.read(tmp_path / "g.zarr")


def test_missing_store(tmp_path):
    with pytest.raises(FileNotFoundError):
        oom.read_zarr(tmp_path / "nope.zarr")


def test_read_zarr_on_a_file(tmp_path):
    small_anndata("csr").write_h5ad(tmp_path / "a.h5ad")
    with pytest.raises(AnnDataReadError, match="not a Zarr store directory"):
        oom.read_zarr(tmp_path / "a.h5ad")


@pytest.mark.parametrize("fmt", [2, 3])
def test_corrupt_chunk(tmp_path, fmt):
    path = _store(tmp_path, fmt)
    chunk_dir = path / "X" / "data"
    chunk = next(p for p in sorted(chunk_dir.rglob("*")) if p.is_file() and not p.name.startswith((".z", "zarr.json")))
    chunk.write_bytes(b"\x00garbage" * 10)
    before = dir_listing(path)
    a = oom.read(path)
    with pytest.raises(AnnDataFormatError, match="cannot read Zarr array"):
        a.X.sum()
    assert dir_listing(path) == before


def test_broken_array_metadata(tmp_path):
    path = _store(tmp_path, 3)
    (path / "X" / "indices" / "zarr.json").write_text("{not json")
    os.remove(path / "zarr.json")  # consolidated metadata would hide the damage from zarr-python
    g = json.loads(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {
        "encoding-type": "anndata", "encoding-version": "0.1.0"}}))
    (path / "zarr.json").write_text(json.dumps(g))
    with pytest.raises((AnnDataFormatError, AnnDataReadError)):
        oom.read(path).X.sum()


def test_unsupported_matrix_encoding(tmp_path):
    path = _store(tmp_path, 2)
    attrs = json.loads((path / "X" / ".zattrs").read_text())
    attrs["encoding-type"] = "coo_matrix"
    (path / "X" / ".zattrs").write_text(json.dumps(attrs))
    os.remove(path / ".zmetadata")
    with pytest.raises(AnnDataFormatError, match="unsupported matrix encoding"):
        oom.read(path)
