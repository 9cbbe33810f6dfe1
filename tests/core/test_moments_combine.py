"""Moments of row ranges, combined and finalised by the core (what oom.distributed does),
equal one pass's, and scanpy's mean/var formula."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from anndataoom import _oom


@pytest.fixture
def matrix(make_h5ad):
    path, _ = make_h5ad(n_obs=300, n_vars=40, density=0.3, seed=11)
    return _oom.open(str(path), "X"), ad.read_h5ad(path).X.toarray().astype(np.float64)


def _ranges(m, cuts):
    return [m.subset(np.arange(a, b, dtype=np.int64), None) for a, b in zip(cuts[:-1], cuts[1:],
                                                                              strict=True)]


def test_combined_ranges_are_one_pass(matrix):
    m, x = matrix
    groups = (np.arange(300) % 3).astype(np.uint32)
    whole = _oom.moments(m, groups, 3)
    cuts = [0, 1, 120, 121, 300]
    parts = [_oom.moments(r, groups[a:b], 3)
             for r, a, b in zip(_ranges(m, cuts), cuts[:-1], cuts[1:], strict=True)]
    got = _oom.moments_combine(parts)
    for k in ("n", "n_pos", "n_nonzero", "row_sum"):
        np.testing.assert_array_equal(got[k], whole[k])
    for k in ("sum", "sumsq", "mean", "var"):
        np.testing.assert_allclose(got[k], whole[k], rtol=1e-12, atol=1e-12)
    assert got["non_integer"] == whole["non_integer"]
    for g in range(3):
        np.testing.assert_allclose(got["mean"][g], x[groups == g].mean(0), rtol=1e-9)
        np.testing.assert_allclose(got["var"][g], x[groups == g].var(0, ddof=1), rtol=1e-9,
                                   atol=1e-12)


def test_bad_parts(matrix):
    m, _ = matrix
    a = _oom.moments(m)
    b = _oom.moments(m.subset(None, np.arange(5, dtype=np.int64)))
    with pytest.raises(ValueError, match="no moments"):
        _oom.moments_combine([])
    with pytest.raises(ValueError, match="cannot combine"):
        _oom.moments_combine([a, b])
    with pytest.raises(ValueError, match="without 'sumsq'"):
        _oom.moments_combine([{k: v for k, v in a.items() if k != "sumsq"}])
