"""``oom.pp.sqrt`` against ``sc.pp.sqrt``: lazy, sparse stays sparse, numpy's dtypes."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp

import anndataoom as oom


@pytest.mark.parametrize(("fmt", "dtype"), [("csr", "float32"), ("dense", "int32"),
                                             ("csc", "float64")])
def test_matches_scanpy(make_h5ad, fmt, dtype):
    path, _ = make_h5ad(n_obs=90, n_vars=40, fmt=fmt, dtype=dtype, density=0.3, seed=4)
    lazy, mem = oom.read(path), ad.read_h5ad(path)
    assert oom.pp.sqrt(lazy) is None
    sc.pp.sqrt(mem)
    assert isinstance(lazy.X, oom.BackedArray) and lazy.X.transforms == ("sqrt",)
    assert lazy.X.is_sparse == (fmt != "dense")
    ours = lazy.X.to_memory()
    assert ours.dtype == mem.X.dtype
    theirs = mem.X.toarray() if sp.issparse(mem.X) else mem.X
    np.testing.assert_array_equal(ours.toarray() if sp.issparse(ours) else ours, theirs)
    lazy.close()


def test_copy_array_and_in_memory(make_h5ad):
    path, mem = make_h5ad(n_obs=30, n_vars=20, density=0.4, seed=1)
    lazy = oom.read(path)
    out = oom.pp.sqrt(lazy, copy=True)
    assert isinstance(out, oom.AnnDataOOM) and not lazy.X.transforms
    arr = oom.pp.sqrt(lazy.X)
    assert isinstance(arr, oom.BackedArray)
    np.testing.assert_allclose(arr.toarray(), np.sqrt(mem.X.toarray()), rtol=1e-7)
    assert sp.issparse(oom.pp.sqrt(mem.X.copy()))  # in memory: scanpy's result
    lazy.close()
