"""One two-process ``LocalCluster`` shared by the module that asks for it."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(scope="module")
def client():
    """Yield a ``dask.distributed`` client on 2 worker processes × 1 thread, always closed."""
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed (pip install anndataoom[dask])"
    )
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0",
        silence_logs=logging.ERROR,
    ) as cluster, distributed.Client(cluster) as c:
        yield c
