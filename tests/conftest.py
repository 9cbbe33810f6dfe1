"""Shared fixtures: generated ``.h5ad`` files and the cached PBMC 3k path."""

from __future__ import annotations

import os

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from anndataoom.testing import gen_h5ad

FORMATS = ("csr", "csc", "dense")


@pytest.fixture
def make_h5ad(tmp_path):
    """Factory: ``make_h5ad(name=None, **gen_h5ad_kwargs) -> (path, in-memory AnnData)``."""
    counter = iter(range(10_000))

    def make(name: str | None = None, **kw):
        path = tmp_path / (name or f"gen_{next(counter)}.h5ad")
        mem = gen_h5ad(path, **kw)
        return path, mem

    return make


@pytest.fixture(params=FORMATS)
def fmt(request) -> str:
    """Each on-disk X format."""
    return request.param


@pytest.fixture
def small_file(make_h5ad, fmt):
    """A 60 × 40 file in each format, with obs columns, obsm and uns."""
    path, _ = make_h5ad(n_obs=60, n_vars=40, fmt=fmt, density=0.3, seed=3)
    return path


@pytest.fixture(scope="session")
def pbmc3k_path():
    """Path of the cached PBMC 3k raw counts (downloaded on a fresh machine)."""
    import anndataoom.datasets

    return anndataoom.datasets.pbmc3k()


def dense(x) -> np.ndarray:
    """Any matrix (lazy, sparse, dense, view) as a dense ndarray."""
    if hasattr(x, "to_memory") and not isinstance(x, np.ndarray):
        x = x.to_memory()
    if sp.issparse(x):
        x = x.toarray()
    return np.asarray(x)


def assert_x_equal(ours, expected) -> None:
    """Exact equality of values and dtype (lazy vs anndata in memory)."""
    a, b = dense(ours), dense(expected)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    np.testing.assert_array_equal(a, b)


def assert_adata_equal(ours, expected: ad.AnnData, *, layers: bool = True) -> None:
    """Compare an AnnDataOOM (or in-memory AnnData) with anndata in memory."""
    assert ours.shape == expected.shape
    assert list(ours.obs_names) == list(expected.obs_names)
    assert list(ours.var_names) == list(expected.var_names)
    assert_x_equal(ours.X, expected.X)
    assert list(ours.obs.columns) == list(expected.obs.columns)
    for c in expected.obs.columns:
        np.testing.assert_array_equal(np.asarray(ours.obs[c]), np.asarray(expected.obs[c]))
    for c in expected.var.columns:
        np.testing.assert_array_equal(np.asarray(ours.var[c]), np.asarray(expected.var[c]))
    assert set(ours.obsm.keys()) == set(expected.obsm.keys())
    for k in expected.obsm:
        np.testing.assert_array_equal(dense(ours.obsm[k]), dense(expected.obsm[k]))
    if layers:
        assert set(ours.layers.keys()) == set(expected.layers.keys())
        for k in expected.layers:
            assert_x_equal(ours.layers[k], expected.layers[k])


def dir_listing(path) -> set[str]:
    """Names in the directory of ``path``."""
    return set(os.listdir(os.path.dirname(os.fspath(path))))
