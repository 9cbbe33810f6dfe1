"""oom.read_10x_mtx / oom.read_mtx against scanpy and scipy; bad input gives typed errors."""

from __future__ import annotations

import gc
import gzip
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.io
import scipy.sparse as sp

import anndataoom as oom

DATA = Path(__file__).parent.parent / "data" / "10x"
V2 = DATA / "1.2.0" / "filtered_gene_bc_matrices" / "hg19_chr21"
V3 = DATA / "3.0.0" / "filtered_feature_bc_matrix"


@pytest.fixture(autouse=True)
def spill_dir(tmp_path, monkeypatch):
    """Temp files of ours go here; every test checks nothing is left behind."""
    d = tmp_path / "spill"
    d.mkdir()
    monkeypatch.setenv("OOM_TMPDIR", str(d))
    yield d
    gc.collect()
    assert list(d.iterdir()) == []


def assert_same(ours, ref) -> None:
    assert isinstance(ours.X, oom.BackedArray)
    mem = ours.to_memory()
    assert mem.X.dtype == ref.X.dtype == np.float32
    assert mem.X.shape == ref.X.shape
    assert (sp.csr_matrix(mem.X) != ref.X).nnz == 0
    pd.testing.assert_frame_equal(mem.obs, ref.obs)
    pd.testing.assert_frame_equal(mem.var, ref.var)


@pytest.mark.parametrize("folder", [V2, V3], ids=["v2", "v3"])
@pytest.mark.parametrize("kw", [{}, {"var_names": "gene_ids"}, {"make_unique": False},
                                {"gex_only": False}])
def test_scanpy_folders_read_as_scanpy(folder, kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = sc.read_10x_mtx(folder, **kw)
        ours = oom.read_10x_mtx(folder, **kw)
    assert_same(ours, ref)
    ours.close()


def test_prefix_and_uncompressed(tmp_path):
    d = tmp_path / "star"
    d.mkdir()
    for name in ("matrix.mtx", "features.tsv", "barcodes.tsv"):
        shutil.copy(V3 / f"{name}.gz", d / f"p_{name}.gz")
        with gzip.open(V3 / f"{name}.gz", "rb") as src, open(d / f"p_{name}", "wb") as dst:
            shutil.copyfileobj(src, dst)
    ref = sc.read_10x_mtx(d, prefix="p_")
    assert_same(oom.read_10x_mtx(d, prefix="p_"), ref)
    # STARsolo-style plain files (scanpy >= 1.12's compressed=False) hold the same matrix
    assert_same(oom.read_10x_mtx(d, prefix="p_", compressed=False), ref)


def test_read_mtx_like_scanpy():
    path = V3 / "matrix.mtx.gz"
    assert_same(oom.read_mtx(path), sc.read_mtx(path))
    for dtype in ("float64", "int32"):
        ours, ref = oom.read_mtx(path, dtype=dtype), sc.read_mtx(path, dtype=dtype)
        assert ours.X.dtype == ref.X.dtype
        np.testing.assert_array_equal(ours.X.toarray(), ref.X.toarray())
        ours.close()


def _write_mtx(path: Path, rows, cols, vals, shape, field="integer", gz=False, banner=None):
    lines = [banner or f"%%MatrixMarket matrix coordinate {field} general", "% a comment",
             f"{shape[0]} {shape[1]} {len(rows)}"]
    fmt = "{} {} {:d}" if field == "integer" else "{} {} {!r}"
    lines += [fmt.format(r + 1, c + 1, v.item()) for r, c, v in zip(rows, cols, np.asarray(vals), strict=True)]
    text = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


@pytest.mark.parametrize("field", ["integer", "real"])
@pytest.mark.parametrize("gz", [False, True])
def test_any_order_and_duplicates_like_scipy(tmp_path, field, gz):
    """Entries in random order with duplicates, bigger than one parse chunk and one bucket."""
    rng = np.random.default_rng(7)
    n, shape = 200_000, (2_000, 700)
    rows, cols = rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)
    vals = rng.integers(-5, 100, n) if field == "integer" else rng.normal(size=n) * 1e3
    path = _write_mtx(tmp_path / ("m.mtx.gz" if gz else "m.mtx"), rows, cols, vals, shape, field, gz)
    ref = sp.csr_matrix(scipy.io.mmread(path).astype(np.float32))
    ours = oom.read_mtx(path).X.to_memory()
    assert ours.shape == ref.shape
    ref.sum_duplicates()
    np.testing.assert_array_equal(ours.indptr, ref.indptr)
    np.testing.assert_array_equal(ours.indices, ref.indices)
    np.testing.assert_allclose(ours.data, ref.data, rtol=1e-6, atol=1e-3)


def test_pattern_and_empty(tmp_path):
    p = tmp_path / "p.mtx"
    p.write_text("%%MatrixMarket matrix coordinate pattern general\n3 2 2\n1 2\n3 2\n")
    np.testing.assert_array_equal(oom.read_mtx(p).X.toarray(), scipy.io.mmread(p).toarray())
    e = _write_mtx(tmp_path / "e.mtx", [], [], [], (4, 3))
    a = oom.read_mtx(e)
    assert a.shape == (4, 3) and a.X.nnz == 0


def test_out_keeps_h5ad_and_zarr(tmp_path):
    ref = sc.read_10x_mtx(V3)
    for out in (tmp_path / "x.h5ad", tmp_path / "x.zarr"):
        a = oom.read_10x_mtx(V3, out=out)
        assert a.X.path == str(out)
        assert_same(a, ref)
        a.close()
        assert out.exists()


@pytest.fixture
def cachedir(tmp_path):
    """scanpy's cache directory, in the test's temp dir."""
    before = sc.settings.cachedir
    sc.settings.cachedir = tmp_path / "cache"
    yield sc.settings.cachedir
    sc.settings.cachedir = before


def test_cache_like_scanpy(tmp_path, cachedir):
    """cache=True keeps the result in scanpy's cache dir and reads it back; a newer folder re-parses."""
    import h5py

    folder = tmp_path / "v3"
    shutil.copytree(V3, folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = sc.read_10x_mtx(folder, cache=True)
    scanpy_files = set(cachedir.rglob("*"))
    first = oom.read_10x_mtx(folder, cache=True)
    cached = Path(first.X.path)
    assert cached.parent == cachedir
    with h5py.File(cached) as f:  # scanpy's default cache compression
        assert f["X/data"].compression == sc.settings.cache_compression == "lzf"
    assert_same(first, ref)
    made = cached.stat().st_mtime_ns
    again = oom.read_10x_mtx(folder, cache=True)
    assert again.X.path == str(cached) and cached.stat().st_mtime_ns == made
    assert_same(again, ref)
    # other options → another cached file; gzip on request
    ids = oom.read_10x_mtx(folder, cache=True, var_names="gene_ids", cache_compression="gzip")
    by_ids = Path(ids.X.path)
    assert by_ids != cached
    with h5py.File(by_ids) as f:
        assert f["X/data"].compression == "gzip"
    assert_same(ids, sc.read_10x_mtx(folder, var_names="gene_ids"))
    # a folder changed after caching is read again
    genes = pd.read_csv(folder / "features.tsv.gz", header=None, sep="\t")
    genes[1] = "g" + genes[1].astype(str)
    genes.to_csv(folder / "features.tsv.gz", header=False, index=False, sep="\t")
    for a in (first, again, ids):
        a.close()
    fresh = oom.read_10x_mtx(folder, cache=True)
    assert fresh.var_names[0] == "g" + ref.var_names[0]
    assert set(cachedir.rglob("*")) - scanpy_files == {cached, by_ids}
    fresh.close()


def test_cache_and_out_refused(tmp_path):
    with pytest.raises(ValueError, match="either `out` or `cache=True`"):
        oom.read_10x_mtx(V3, cache=True, out=tmp_path / "x.h5ad")
    assert not (tmp_path / "x.h5ad").exists()


def test_temp_store_removed_on_close_and_gc(spill_dir):
    a = oom.read_10x_mtx(V3)
    assert len(list(spill_dir.iterdir())) == 1
    sub = a[:10, :5]
    a.close()
    assert sub.X.toarray().shape == (10, 5)  # derived objects keep the store alive
    del sub
    gc.collect()
    assert list(spill_dir.iterdir()) == []


# -- bad input ----------------------------------------------------------------

def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "f"
    shutil.copytree(V2, d)
    return d


def _set_matrix(d: Path, body: str, header: str = "343 12 3") -> None:
    (d / "matrix.mtx").write_text(f"%%MatrixMarket matrix coordinate integer general\n%\n{header}\n{body}")


@pytest.mark.parametrize(("header", "body", "match"), [
    ("343 12 3", "1 1 1\n2 2 x\n3 3 1\n", "line 5"),          # malformed value
    ("343 12 3", "1 1 1\n2 2\n3 3 1\n", "line 5"),            # missing field
    ("343 12 3", "1 1 1\n2 2 1\n", "announces 3"),            # header disagrees
    ("343 12 2", "1 1 1\n2 2 1\n3 3 1\n", "more entries"),
    ("343 12 3", "1 1 1\n344 2 1\n3 3 1\n", "outside.*line 5"),  # out of range
    ("343 12 3", "1 1 1\n2 0 1\n3 3 1\n", "outside"),
    ("343 12", "1 1 1\n", "size line"),
])
def test_malformed_matrix(tmp_path, header, body, match):
    d = _folder(tmp_path)
    _set_matrix(d, body, header)
    before = sorted(p.name for p in d.iterdir())
    with pytest.raises(oom.AnnDataFormatError, match=match):
        oom.read_10x_mtx(d)
    assert sorted(p.name for p in d.iterdir()) == before


def test_not_matrix_market(tmp_path):
    p = tmp_path / "x.mtx"
    p.write_text("hello\n")
    with pytest.raises(oom.AnnDataFormatError, match="line 1"):
        oom.read_mtx(p)
    p.write_text("%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4\n")
    with pytest.raises(oom.AnnDataFormatError, match="coordinate"):
        oom.read_mtx(p)
    with pytest.raises(FileNotFoundError):
        oom.read_mtx(tmp_path / "none.mtx")


def test_truncated_gzip(tmp_path):
    d = tmp_path / "v3"
    shutil.copytree(V3, d)
    data = (d / "matrix.mtx.gz").read_bytes()
    (d / "matrix.mtx.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(oom.AnnDataReadError, match="truncated|corrupt"):
        oom.read_10x_mtx(d)


def test_missing_files(tmp_path):
    d = tmp_path / "v3"
    shutil.copytree(V3, d)
    (d / "features.tsv.gz").unlink()
    with pytest.raises(FileNotFoundError, match="features"):
        oom.read_10x_mtx(d)
    with pytest.raises(FileNotFoundError, match="matrix"):
        oom.read_10x_mtx(tmp_path / "nowhere")


def test_wrong_shapes(tmp_path):
    d = _folder(tmp_path)
    lines = (d / "barcodes.tsv").read_text().splitlines()
    (d / "barcodes.tsv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(oom.AnnDataFormatError, match="11 barcodes"):
        oom.read_10x_mtx(d)


def test_duplicate_barcodes_like_scanpy(tmp_path):
    d = _folder(tmp_path)
    lines = (d / "barcodes.tsv").read_text().splitlines()
    lines[1] = lines[0]
    (d / "barcodes.tsv").write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = sc.read_10x_mtx(d)
        ours = oom.read_10x_mtx(d)
    assert not ref.obs_names.is_unique
    assert_same(ours, ref)
