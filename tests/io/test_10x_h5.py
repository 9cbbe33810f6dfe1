"""oom.read_10x_h5 against scanpy.read_10x_h5: scanpy's own Cell Ranger files and generated ones."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

import anndataoom as oom
from anndataoom.testing import write_10x_h5

DATA = Path(__file__).parent.parent / "data" / "10x"
V2 = DATA / "1.2.0" / "filtered_gene_bc_matrices_h5.h5"
V2_MULTI = DATA / "1.2.0" / "multiple_genomes.h5"
V3 = DATA / "3.0.0" / "filtered_feature_bc_matrix.h5"


def assert_same(ours: oom.AnnDataOOM, ref) -> None:
    assert isinstance(ours.X, oom.BackedArray)
    mem = ours.to_memory()
    assert mem.X.dtype == ref.X.dtype
    assert mem.X.shape == ref.X.shape
    assert (sp.csr_matrix(mem.X) != ref.X).nnz == 0
    pd.testing.assert_frame_equal(mem.obs, ref.obs)
    pd.testing.assert_frame_equal(mem.var, ref.var)


@pytest.mark.parametrize(("path", "kw"), [
    (V2, {}),
    (V2_MULTI, {"genome": "hg19_chr21"}),
    (V3, {}),
    (V3, {"gex_only": False}),
    (V3, {"genome": "GRCh38_chr21"}),
])
def test_scanpy_files_read_as_scanpy(path, kw):
    assert_same(oom.read_10x_h5(path, **kw), sc.read_10x_h5(path, **kw))


def test_lazy_and_no_conversion(tmp_path, monkeypatch):
    monkeypatch.setenv("OOM_TMPDIR", str(tmp_path))
    a = oom.read_10x_h5(V3)
    assert a.X.source_format == "csr_matrix"  # the CSC is opened as CSR, not transposed
    assert list(tmp_path.iterdir()) == []
    # row blocks and column subsets read lazily equal scanpy's
    ref = sc.read_10x_h5(V3)
    rows = np.array([5, 0, 1000, 5])
    np.testing.assert_array_equal(a[rows, 10:40].X.toarray(), ref[rows, 10:40].X.toarray())
    np.testing.assert_allclose(a.X.sum(axis=0), np.asarray(ref.X.sum(axis=0)).ravel(), rtol=1e-6)


@pytest.fixture
def mixed_file(tmp_path):
    """A v3 file with two genomes, antibody features and duplicated gene names."""
    rng = np.random.default_rng(0)
    X = sp.random(50, 12, density=0.4, format="csr", random_state=1, dtype=np.float64)
    X.data = rng.integers(1, 30, X.nnz).astype(np.float64)
    names = [f"g{i % 9}" for i in range(12)]  # repeats: scanpy keeps them as they are
    types = ["Gene Expression"] * 9 + ["Antibody Capture"] * 3
    genomes = ["hg"] * 5 + ["mm"] * 4 + [""] * 3
    path = tmp_path / "mixed.h5"
    write_10x_h5(path, X, [f"c{i}-1" for i in range(50)], names, ids=[f"id{i}" for i in range(12)],
                 feature_types=types, genomes=genomes)
    return path


@pytest.mark.parametrize("kw", [{}, {"gex_only": False}, {"genome": "mm"}, {"genome": "hg", "gex_only": False}])
def test_feature_types_and_genomes(mixed_file, kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # non-unique names, as scanpy
        ref = sc.read_10x_h5(mixed_file, **kw)
        ours = oom.read_10x_h5(mixed_file, **kw)
    assert_same(ours, ref)


def test_gex_only_file_is_not_column_subset(tmp_path, mixed_file):
    """A file of gene expression only is read with no column selection (nothing to drop).

    The mask of ``gex_only`` keeps every feature: X reads the stored columns
    as they are, and equals scanpy's.
    """
    X = sp.random(20, 7, density=0.5, format="csr", random_state=2, dtype=np.float64)
    X.data = np.ceil(X.data * 9)
    path = tmp_path / "gex.h5"
    write_10x_h5(path, X, [f"c{i}-1" for i in range(20)], [f"g{i}" for i in range(7)])
    for genome in (None, "GRCh38"):
        ours = oom.read_10x_h5(path, genome=genome)
        assert ours.X.matrix.is_identity  # no row or column selection in the plan
        assert_same(ours, sc.read_10x_h5(path, genome=genome))
    # with other feature types the selection is there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # non-unique names
        assert not oom.read_10x_h5(mixed_file).X.matrix.is_identity


def test_unknown_genome(mixed_file):
    with pytest.raises(ValueError, match="Could not find data corresponding to genome 'xx'"):
        oom.read_10x_h5(mixed_file, genome="xx")
    with pytest.raises(ValueError, match="more than one genome"):
        oom.read_10x_h5(V2_MULTI)
    with pytest.raises(ValueError, match="Could not find genome"):
        oom.read_10x_h5(V2_MULTI, genome="zz")


def test_pipeline_runs_on_10x(mixed_file):
    a = oom.read_10x_h5(mixed_file)
    # the fixture has empty cells: both warn as scanpy does
    with pytest.warns(UserWarning, match="Some cells have zero counts"):
        oom.pp.normalize_total(a)
    oom.pp.log1p(a)
    ref = sc.read_10x_h5(mixed_file)
    with pytest.warns(UserWarning, match="Some cells have zero counts"):
        sc.pp.normalize_total(ref)
    sc.pp.log1p(ref)
    np.testing.assert_allclose(a.X.toarray(), ref.X.toarray(), rtol=1e-6)


def test_duplicate_barcodes_warn_like_scanpy(tmp_path):
    path = tmp_path / "dup.h5"
    X = sp.csr_matrix(np.arange(6, dtype=np.float64).reshape(3, 2))
    write_10x_h5(path, X, ["a", "a", "b"], ["g1", "g2"])
    with pytest.warns(UserWarning, match="Observation names are not unique") as ours:
        a = oom.read_10x_h5(path)
    with pytest.warns(UserWarning, match="Observation names are not unique"):
        ref = sc.read_10x_h5(path)
    assert len(ours) >= 1
    assert_same(a, ref)


# -- bad input ----------------------------------------------------------------

def test_missing_and_not_hdf5(tmp_path):
    with pytest.raises(FileNotFoundError):
        oom.read_10x_h5(tmp_path / "nope.h5")
    bad = tmp_path / "text.h5"
    bad.write_text("not hdf5")
    with pytest.raises(oom.AnnDataReadError):
        oom.read_10x_h5(bad)
    with pytest.raises(oom.AnnDataReadError):
        oom.read_10x_h5(tmp_path)


def test_truncated(tmp_path):
    path = tmp_path / "cut.h5"
    data = V3.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises((oom.AnnDataReadError, oom.AnnDataFormatError)):
        oom.read_10x_h5(path).X.toarray()
    assert V3.read_bytes() == data


def _edit(src: Path, dst: Path, fn) -> Path:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        fn(f)
    return dst


def test_missing_datasets(tmp_path):
    no_features = _edit(V3, tmp_path / "a.h5", lambda f: f.__delitem__("matrix/features/name"))
    with pytest.raises(oom.AnnDataFormatError, match="missing"):
        oom.read_10x_h5(no_features)
    no_data = _edit(V3, tmp_path / "b.h5", lambda f: f.__delitem__("matrix/data"))
    with pytest.raises(oom.AnnDataFormatError, match="data"):
        oom.read_10x_h5(no_data)
    not_10x = tmp_path / "c.h5"
    with h5py.File(not_10x, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(oom.AnnDataFormatError):
        oom.read_10x_h5(not_10x)


def test_wrong_shapes(tmp_path):
    def shape(f):
        f["matrix/shape"][...] = np.array([507, 1000], dtype=f["matrix/shape"].dtype)

    with pytest.raises(oom.AnnDataFormatError, match="indptr"):
        oom.read_10x_h5(_edit(V3, tmp_path / "a.h5", shape))

    def barcodes(f):
        b = f["matrix/barcodes"][:-1]
        del f["matrix/barcodes"]
        f["matrix/barcodes"] = b

    with pytest.raises(oom.AnnDataFormatError, match="barcodes"):
        oom.read_10x_h5(_edit(V3, tmp_path / "b.h5", barcodes))

    def indices(f):
        i = f["matrix/indices"][:]
        i[3] = 10**6
        del f["matrix/indices"]
        f["matrix/indices"] = i

    a = oom.read_10x_h5(_edit(V3, tmp_path / "c.h5", indices))
    with pytest.raises(ValueError, match="out of range|outside|column"):
        a.X.toarray()


def test_rebuilt_from_its_plan():
    """Workers (dask.distributed) rebuild the lazy X from its pickled plan."""
    import pickle

    a = oom.read_10x_h5(V3)
    rebuilt = pickle.loads(pickle.dumps(a.X))
    ref = sc.read_10x_h5(V3)
    assert rebuilt.shape == ref.shape
    assert (rebuilt.to_memory() != ref.X).nnz == 0
    assert float(a.X.to_dask(chunks=300).sum().compute()) == float(ref.X.sum())


@pytest.fixture
def server():
    """A local HTTP server: ``/v3.h5`` is the v3 file, ``/cut.h5`` announces more bytes than it sends."""
    import http.server
    import threading

    body = V3.read_bytes()
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            hits.append(self.path)
            if self.path not in ("/v3.h5", "/cut.h5"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body if self.path == "/v3.h5" else body[: len(body) // 2])

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


def test_backup_url_downloads_a_missing_file_once(tmp_path, server):
    url, hits = server
    path = tmp_path / "sub" / "pbmc.h5"
    assert_same(oom.read_10x_h5(path, backup_url=f"{url}/v3.h5"), sc.read_10x_h5(V3))
    assert path.read_bytes() == V3.read_bytes()
    oom.read_10x_h5(path, backup_url=f"{url}/v3.h5")
    assert hits == ["/v3.h5"]


@pytest.mark.parametrize(("name", "error"), [("cut.h5", oom.AnnDataReadError),
                                             ("gone.h5", OSError)])
def test_failed_download_leaves_nothing(tmp_path, server, name, error):
    url, _ = server
    path = tmp_path / "pbmc.h5"
    with pytest.raises(error):
        oom.read_10x_h5(path, backup_url=f"{url}/{name}")
    assert list(tmp_path.iterdir()) == []
