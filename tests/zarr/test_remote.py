"""Remote Zarr stores: ``oom.read("s3://...")`` and ``oom.read("http://...")``.

Stores written by anndata itself (v2, v3, v3 sharded) are served from
127.0.0.1 by a real S3-compatible server (moto) and by a plain HTTP server
with range requests; reading them and running the pipeline gives exactly
the local result.  Unreachable or silent servers give typed errors naming
the URL within the timeout, never a hang.
"""

from __future__ import annotations

import http.server
import os
import re
import socket
import threading
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
from _stores import STORE_KINDS, small_anndata, write_store

import anndataoom as oom
from anndataoom.testing import assert_adata_equal

pytest.importorskip("s3fs")
pytest.importorskip("aiohttp")
moto_server = pytest.importorskip("moto.server")

KINDS = [k for k in STORE_KINDS if k[1] == "default"]  # v2, v3, v3 sharded
KIND_IDS = [f"v{f}{'-sharded' if s else ''}" for f, _, s in KINDS]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=a-b`` support (what object stores give)."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def send_head(self):
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        path = self.translate_path(self.path)
        if m is None or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        a, b = m.groups()
        start, end = (size - int(b), size - 1) if a == "" else (int(a), int(b or size - 1))
        end = min(end, size - 1)
        f = open(path, "rb")  # noqa: SIM115 (closed by copyfile's caller)
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self._left = end - start + 1
        return f

    def copyfile(self, source, outputfile):
        left = getattr(self, "_left", None)
        if left is None:
            return super().copyfile(source, outputfile)
        outputfile.write(source.read(left))
        self._left = None


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The same counts written by anndata as v2, v3 and v3-sharded stores."""
    root = tmp_path_factory.mktemp("served")
    mem = small_anndata("csr", n_obs=1500, n_vars=80, seed=4)
    for (fmt, codec, sharded), name in zip(KINDS, KIND_IDS, strict=True):
        write_store(mem, root / f"{name}.zarr", fmt, codec, sharded)
    return root


@pytest.fixture(scope="module")
def http_url(stores):
    """Base URL of an HTTP server on 127.0.0.1 serving ``stores``."""
    handler = type("H", (_RangeHandler,), {})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(stores))
    )
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def s3_bucket(stores):
    """A moto S3 server on 127.0.0.1 with ``stores`` uploaded to bucket ``atlas``."""
    import boto3

    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true"}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="atlas")
    for f in Path(stores).rglob("*"):
        if f.is_file():
            s3.upload_file(str(f), "atlas", f.relative_to(stores).as_posix())
    yield env
    server.stop()


@pytest.fixture
def s3_env(s3_bucket, monkeypatch):
    for k, v in s3_bucket.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    return s3_bucket


def _pipeline(a):
    oom.pp.calculate_qc_metrics(a, percent_top=[10], inplace=True)
    oom.pp.normalize_total(a, target_sum=1e4)
    oom.pp.log1p(a)
    oom.pp.highly_variable_genes(a, n_top_genes=30)
    oom.pp.pca(a, n_comps=10, random_state=0)
    return a


def _check_same_as_local(url, local):
    a = oom.read(url)
    want = ad.read_zarr(local)
    assert a.X.path == url
    assert_adata_equal(a, want)
    got = _pipeline(a)
    ref = _pipeline(oom.read(local))
    for c in ("total_counts", "n_genes_by_counts"):
        np.testing.assert_array_equal(got.obs[c], ref.obs[c])
    np.testing.assert_array_equal(got.var["highly_variable"], ref.var["highly_variable"])
    np.testing.assert_array_equal(got.obsm["X_pca"], ref.obsm["X_pca"])


@pytest.mark.parametrize("name", KIND_IDS)
def test_http_equals_local(stores, http_url, name):
    _check_same_as_local(f"{http_url}/{name}.zarr", stores / f"{name}.zarr")


@pytest.mark.parametrize("name", KIND_IDS)
def test_s3_equals_local(stores, s3_env, name):
    _check_same_as_local(f"s3://atlas/{name}.zarr", stores / f"{name}.zarr")


def test_s3_endpoint_url_s3_variable(stores, s3_env, monkeypatch):
    """``AWS_ENDPOINT_URL_S3`` alone is enough (the S3-specific variable)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_env["AWS_ENDPOINT_URL"])
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    a = oom.read("s3://atlas/v3.zarr/")
    assert a.shape == ad.read_zarr(stores / "v3.zarr").shape


def test_missing_store_is_file_not_found(http_url, s3_env):
    with pytest.raises(FileNotFoundError, match="nothere.zarr"):
        oom.read(f"{http_url}/nothere.zarr")
    with pytest.raises(FileNotFoundError, match="s3://atlas/nothere.zarr"):
        oom.read("s3://atlas/nothere.zarr")


def test_unreachable_server_is_a_typed_error(monkeypatch):
    url = f"http://127.0.0.1:{_free_port()}/a.zarr"  # nothing listens there
    t = time.monotonic()
    with pytest.raises(oom.AnnDataReadError, match=re.escape(url)) as e:
        oom.read(url)
    assert isinstance(e.value, OSError)
    assert time.monotonic() - t < 30  # a few retries with backoff, then the error


def test_silent_server_times_out(monkeypatch):
    """A server that accepts connections but never answers: the timeout ends the wait."""
    monkeypatch.setenv("ANNDATAOOM_REMOTE_TIMEOUT", "0.5")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/a.zarr"
        t = time.monotonic()
        with pytest.raises(oom.AnnDataReadError, match=re.escape(url)):
            oom.read(url)
        assert time.monotonic() - t < 20


def test_bad_s3_url(s3_env):
    with pytest.raises(oom.AnnDataReadError, match="no bucket"):
        oom.read("s3:///no-bucket.zarr")
