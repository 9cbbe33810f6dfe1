"""Writing Zarr stores: anndata reads back what we write; h5ad ↔ zarr round trips."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import anndata as ad
import numpy as np
import pytest
from _stores import small_anndata

import anndataoom as oom
from anndataoom.io._write import TMP_PREFIX
from anndataoom.testing import assert_adata_equal, dense

WRITE_KINDS = [(2, None), (3, None), (3, 4)]


@pytest.mark.parametrize(("zarr_format", "shards"), WRITE_KINDS)
@pytest.mark.parametrize("fmt_x", ["csr", "csc", "dense"])
def test_anndata_reads_what_we_write(tmp_path, zarr_format, shards, fmt_x):
    mem = small_anndata(fmt_x)
    mem.raw = mem
    h5 = tmp_path / "in.h5ad"
    mem.write_h5ad(h5)
    out = tmp_path / "out.zarr"
    oom.io.write_zarr(oom.read(h5), out, zarr_format=zarr_format, shards=shards, chunk_size=1000)
    back = ad.read_zarr(out)
    assert_adata_equal(back, ad.read_h5ad(h5))
    np.testing.assert_array_equal(dense(back.raw.X), dense(mem.raw.X))
    assert_adata_equal(oom.read(out), back)


def test_lazy_transforms_are_applied(tmp_path):
    mem = small_anndata("csr")
    h5 = tmp_path / "in.h5ad"
    mem.write_h5ad(h5)
    a = oom.read(h5)
    oom.pp.normalize_total(a, target_sum=100)
    oom.pp.log1p(a)
    a.write_zarr(tmp_path / "out.zarr", zarr_format=3)
    expected = a.to_memory()
    back = ad.read_zarr(tmp_path / "out.zarr")
    np.testing.assert_array_equal(back.X.toarray(), expected.X.toarray())
    assert back.uns["log1p"] == expected.uns["log1p"]


@pytest.mark.parametrize(("zarr_format", "shards"), WRITE_KINDS)
@pytest.mark.parametrize("fmt_x", ["csr", "dense"])
def test_empty_axes(tmp_path, zarr_format, shards, fmt_x):
    """No columns or no rows: Zarr forbids zero-length chunk sides, anndata writes these."""
    mem = small_anndata(fmt_x)
    h5 = tmp_path / "in.h5ad"
    mem.write_h5ad(h5)
    a = oom.read(h5)
    for name, sub, want in (("cols", a[:, []], mem[:, []]), ("rows", a[[]], mem[[]])):
        out = tmp_path / f"no_{name}.zarr"
        oom.io.write_zarr(sub, out, zarr_format=zarr_format, shards=shards)
        back = ad.read_zarr(out)
        assert back.shape == want.shape
        assert_adata_equal(back, want.copy())


def test_round_trip_cli(tmp_path):
    """h5ad → zarr (v2, v3 sharded) → h5ad with ``anndataoom convert``: nothing changes."""
    mem = small_anndata("csr")
    src = tmp_path / "a.h5ad"
    mem.write_h5ad(src)
    steps = [(src, tmp_path / "b.zarr", ["--zarr-format", "2"]),
             (tmp_path / "b.zarr", tmp_path / "c.zarr", ["--zarr-format", "3", "--shards", "2"]),
             (tmp_path / "c.zarr", tmp_path / "d.h5ad", [])]
    for a, b, extra in steps:
        subprocess.run([sys.executable, "-m", "anndataoom.cli", "convert", str(a), str(b), *extra],
                       check=True, capture_output=True)
    assert_adata_equal(ad.read_h5ad(tmp_path / "d.h5ad"), mem)
    assert (tmp_path / "c.zarr" / "zarr.json").is_file()
    assert (tmp_path / "b.zarr" / ".zgroup").is_file()


def test_overwrite_is_atomic_and_leaves_no_temp(tmp_path):
    mem = small_anndata("csr")
    h5 = tmp_path / "in.h5ad"
    mem.write_h5ad(h5)
    out = tmp_path / "out.zarr"
    a = oom.read(h5)
    a.write_zarr(out, zarr_format=2)
    a[:100].write_zarr(out, zarr_format=3)
    assert ad.read_zarr(out).n_obs == 100
    assert not [n for n in os.listdir(tmp_path) if n.startswith(TMP_PREFIX)]


def test_refuses_to_overwrite_its_source(tmp_path):
    mem = small_anndata("csr")
    with ad.settings.override(zarr_write_format=3, auto_shard_zarr_v3=False):
        mem.write_zarr(tmp_path / "a.zarr")
    a = oom.read(tmp_path / "a.zarr")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        a.write_zarr(tmp_path / "a.zarr")
    assert_adata_equal(oom.read(tmp_path / "a.zarr"), mem)


def test_a_replaced_store_is_an_error_not_other_data(tmp_path):
    """A store replaced at its path must not feed its chunks to objects opened on the old one."""
    mem = small_anndata("csr")
    mem.write_h5ad(tmp_path / "in.h5ad")
    src = oom.read(tmp_path / "in.h5ad")
    src.write_zarr(tmp_path / "s.zarr")
    a = oom.read(tmp_path / "s.zarr")
    np.testing.assert_array_equal(a.X[:3].toarray(), mem.X[:3].toarray())
    src[100:200].write_zarr(tmp_path / "s.zarr")
    with pytest.raises(oom.AnnDataReadError, match="replaced"):
        a.X[:3].toarray()
    with pytest.raises(oom.AnnDataReadError, match="replaced"):
        a.write_h5ad(tmp_path / "mixed.h5ad")
    assert not (tmp_path / "mixed.h5ad").exists()
    assert oom.read(tmp_path / "s.zarr").n_obs == 100


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_store_rewritten_in_its_directory_is_an_error(tmp_path, zarr_format):
    """anndata's write_zarr writes anew over the store (v2: in the same directory, which
    keeps its inode): a lazy object opened before must refuse, not mix its cached layout
    with the new data."""
    mem = small_anndata("csr")
    with ad.settings.override(zarr_write_format=zarr_format), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's own: v3 autosharding ahead
        mem.write_zarr(tmp_path / "s.zarr")
        a = oom.read(tmp_path / "s.zarr")
        np.testing.assert_array_equal(a.X[:3].toarray(), mem.X[:3].toarray())
        mem[::-1].copy().write_zarr(tmp_path / "s.zarr")
    with pytest.raises(oom.AnnDataReadError, match="rewritten"):
        a.X.to_memory()


@pytest.mark.parametrize("existing", ["folder", "file"])
def test_a_store_replaces_only_a_store(tmp_path, existing):
    """A folder of other files (``-o .``) or a plain file is not wiped by a Zarr write."""
    mem = small_anndata("csr")
    mem.write_h5ad(tmp_path / "in.h5ad")
    target = tmp_path / "out.zarr"
    if existing == "folder":
        target.mkdir()
        (target / "plot.png").write_bytes(b"keep")
    else:
        target.write_bytes(b"keep")
    a = oom.read(tmp_path / "in.h5ad")
    with pytest.raises(FileExistsError, match="not a Zarr store"):
        a.write_zarr(target)
    kept = target / "plot.png" if existing == "folder" else target
    assert kept.read_bytes() == b"keep"
    empty = tmp_path / "empty"
    empty.mkdir()
    a.write_zarr(empty)  # an empty directory may become the store
    assert_adata_equal(oom.read(empty), mem)


@pytest.mark.parametrize(("kw", "match"), [
    ({"zarr_format": 4}, "zarr_format"),
    ({"zarr_format": 2, "shards": 2}, "shards"),
    ({"zarr_format": 3, "shards": 0}, "shards"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"chunk_size": 10**10}, "GiB in memory"),  # was an uncatchable allocation abort
    ({"zarr_format": 3, "shards": 10_000}, "GiB in memory"),
])
def test_bad_write_arguments(tmp_path, kw, match):
    mem = small_anndata("csr")
    mem.write_h5ad(tmp_path / "in.h5ad")
    with pytest.raises(ValueError, match=match):
        oom.io.write_zarr(oom.read(tmp_path / "in.h5ad"), tmp_path / "out.zarr", **kw)
    assert not (tmp_path / "out.zarr").exists()


def test_cli_info_describes_a_store(tmp_path, capsys):
    """``anndataoom info`` reports a store's format, codecs, chunks and shards."""
    from anndataoom.cli.__main__ import main

    mem = small_anndata("csr")
    mem.write_h5ad(tmp_path / "a.h5ad")
    oom.io.write_zarr(oom.read(tmp_path / "a.h5ad"), tmp_path / "a.zarr", zarr_format=3,
                      shards=2, chunk_size=500)
    assert main(["info", str(tmp_path / "a.zarr")]) == 0
    out = capsys.readouterr().out
    assert "700 cells × 60 genes" in out
    assert "zarr v3 ZstdCodec, chunks (500,), shards (1000,)" in out
    assert "obs columns  group" in out
