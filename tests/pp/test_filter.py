"""filter_cells / filter_genes vs scanpy: columns written, lazy subset, X."""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc

from anndataoom import pp
from anndataoom.testing import assert_frame_close, assert_x_close

CELLS = [dict(min_counts=50), dict(min_genes=20), dict(max_counts=120), dict(max_genes=40)]
GENES = [dict(min_counts=15), dict(min_cells=10), dict(max_counts=80), dict(max_cells=60)]


@pytest.mark.parametrize("name", ["csr_f32", "dense_i32", "csc_f64"])
@pytest.mark.parametrize("kw", CELLS)
def test_filter_cells(pair, gen_files, name, kw):
    a, b = pair(gen_files[name])
    pp.filter_cells(a, **kw)
    sc.pp.filter_cells(b, **kw)
    assert a.shape == b.shape
    assert_frame_close(a.obs, b.obs, rtol=0)
    assert_x_close(a.X, b.X, rtol=0, sparse=name != "dense_i32")


@pytest.mark.parametrize("name", ["csr_f32", "dense_i32", "csc_f64"])
@pytest.mark.parametrize("kw", GENES)
def test_filter_genes(pair, gen_files, name, kw):
    a, b = pair(gen_files[name])
    pp.filter_genes(a, **kw)
    sc.pp.filter_genes(b, **kw)
    assert a.shape == b.shape
    assert_frame_close(a.var, b.var, rtol=0)
    assert_x_close(a.X, b.X, rtol=0)


def test_filter_pbmc_chain(pair, pbmc3k_path):
    a, b = pair(pbmc3k_path)
    for f, kw in [(pp.filter_cells, dict(min_genes=200)), (pp.filter_genes, dict(min_cells=3))]:
        f(a, **kw)
        getattr(sc.pp, f.__name__)(b, **kw)
    assert a.shape == b.shape
    assert_frame_close(a.obs, b.obs, rtol=0)
    assert_frame_close(a.var, b.var, rtol=0)


def test_filter_not_inplace_and_copy(pair, gen_files):
    a, b = pair(gen_files["csr_f32"])
    subset, number = pp.filter_cells(a, min_genes=20, inplace=False)
    s2, n2 = sc.pp.filter_cells(b, min_genes=20, inplace=False)
    np.testing.assert_array_equal(subset, s2)
    np.testing.assert_array_equal(number, n2)
    assert a.shape == b.shape
    c = pp.filter_genes(a, min_cells=10, copy=True)
    assert c.n_vars < a.n_vars and "n_cells" not in a.var


def test_filter_one_option(pair, gen_files):
    a, _ = pair(gen_files["csr_f32"])
    with pytest.raises(ValueError, match="Only provide one"):
        pp.filter_cells(a, min_genes=1, min_counts=1)
    with pytest.raises(ValueError, match="Only provide one"):
        pp.filter_genes(a)
