"""Shared fixtures: generated ``.h5ad`` files and the cached PBMC 3k path."""

from __future__ import annotations

import pytest

from anndataoom.testing import FORMATS, gen_h5ad


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
