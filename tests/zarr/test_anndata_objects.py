"""anndata's own test objects (``anndata.tests.helpers.gen_adata``) through Zarr stores."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import anndataoom as oom

pytest.importorskip("awkward")
from anndata.tests.helpers import assert_equal, gen_adata  # noqa: E402

X_TYPES = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "dense": np.asarray}


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("x", list(X_TYPES))
def test_gen_adata_round_trip(tmp_path, zarr_format, x):
    """Every element kind anndata generates reads back lazily and writes back unchanged."""
    mem = gen_adata((40, 25), X_TYPES[x], random_state=np.random.default_rng(7))
    src = tmp_path / "src.zarr"
    with ad.settings.override(zarr_write_format=zarr_format, auto_shard_zarr_v3=False):
        mem.write_zarr(src)
    expected = ad.read_zarr(src)
    a = oom.read(src)
    assert isinstance(a.X, oom.BackedArray)
    assert_equal(a.to_memory(), expected)
    out = tmp_path / "out.zarr"
    a.write_zarr(out, zarr_format=zarr_format)
    assert_equal(ad.read_zarr(out), expected)
