"""The kinds of Zarr store anndata writes, as a fixture."""

from __future__ import annotations

import pytest
from _stores import STORE_KINDS


@pytest.fixture(params=STORE_KINDS, ids=[f"v{f}-{c}{'-sharded' if s else ''}" for f, c, s in STORE_KINDS])
def store_kind(request):
    """Each Zarr format / codec / sharding anndata can write."""
    return request.param
