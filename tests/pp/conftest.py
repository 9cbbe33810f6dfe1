"""Fixtures for the ``pp`` tests: the same data lazily (AnnDataOOM) and in memory."""

from __future__ import annotations

import anndata as ad
import pytest

import anndataoom as oom


@pytest.fixture
def pair():
    """Factory: ``pair(path) -> (AnnDataOOM, in-memory AnnData)`` of one file."""
    opened = []

    def make(path):
        a = oom.read(path)
        opened.append(a)
        return a, ad.read_h5ad(path)

    yield make
    for a in opened:
        try:
            a.close()
        except Exception:  # noqa: BLE001 - closing is best effort in teardown
            pass


@pytest.fixture(scope="session")
def gen_files(tmp_path_factory):
    """Generated counts files: name -> path (csr/csc/dense, float/int)."""
    from anndataoom.testing import gen_h5ad

    d = tmp_path_factory.mktemp("pp")
    specs = {
        "csr_f32": dict(fmt="csr", dtype="float32"),
        "dense_i32": dict(fmt="dense", dtype="int32"),
        "csc_f64": dict(fmt="csc", dtype="float64"),
        "csr_i64": dict(fmt="csr", dtype="int64", compression="gzip"),
    }
    out = {}
    for i, (name, kw) in enumerate(specs.items()):
        path = d / f"{name}.h5ad"
        gen_h5ad(path, n_obs=400, n_vars=600, density=0.15, seed=11 + i, chunks=997, **kw)
        out[name] = path
    return out
