"""calculate_qc_metrics vs scanpy in memory: every column, scanpy's dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc

from anndataoom import pp
from anndataoom.testing import assert_frame_close

KW = [
    dict(),
    dict(qc_vars=["mt"], percent_top=(5, 10, 50)),
    dict(qc_vars="mt", percent_top=None, log1p=False, expr_type="umi", var_type="features"),
]


def _check(a, b, kw):
    so, sv = sc.pp.calculate_qc_metrics(b, **kw)
    o, v = pp.calculate_qc_metrics(a, **kw)
    assert_frame_close(o, so, rtol=1e-9)
    assert_frame_close(v, sv, rtol=1e-9)


@pytest.mark.parametrize("kw", KW)
def test_qc_pbmc(pair, pbmc3k_path, kw):
    a, b = pair(pbmc3k_path)
    for x in (a, b):
        x.var["mt"] = x.var_names.str.startswith("MT-")
    _check(a, b, kw)


@pytest.mark.parametrize("name", ["csr_f32", "dense_i32", "csc_f64", "csr_i64"])
@pytest.mark.parametrize("kw", KW[:2])
def test_qc_generated(pair, gen_files, name, kw):
    a, b = pair(gen_files[name])
    _check(a, b, kw)


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
def test_qc_inplace_on_subset_and_layer(pair, gen_files):
    a, b = pair(gen_files["csr_f32"])
    rows = np.r_[5:60, 3, 3, 0]
    cols = np.arange(0, a.n_vars, 2)
    a, b = a[rows, cols], b[rows].copy()[:, cols].copy()
    a.layers["c"] = a.X
    b.layers["c"] = b.X.copy()
    pp.calculate_qc_metrics(a, qc_vars=["mt"], percent_top=(3, 20), inplace=True, layer="c")
    sc.pp.calculate_qc_metrics(b, qc_vars=["mt"], percent_top=(3, 20), inplace=True, layer="c")
    assert_frame_close(a.obs, b.obs, rtol=1e-9)
    assert_frame_close(a.var, b.var, rtol=1e-9)


def test_qc_after_transform(pair, gen_files):
    """QC over a lazily normalised matrix reads the transformed values."""
    a, b = pair(gen_files["csr_f32"])
    pp.normalize_total(a, target_sum=100)
    sc.pp.normalize_total(b, target_sum=100)
    o, v = pp.calculate_qc_metrics(a, percent_top=(5,))
    so, sv = sc.pp.calculate_qc_metrics(b, percent_top=(5,))
    assert_frame_close(o, so, rtol=1e-5)
    assert_frame_close(v, sv, rtol=1e-5)


def test_qc_bad_percent_top(pair, gen_files):
    a, _ = pair(gen_files["csr_f32"])
    with pytest.raises(IndexError, match="Positions outside range"):
        pp.calculate_qc_metrics(a, percent_top=(10_000,))


def test_qc_unknown_qc_var_names_it(pair, gen_files):
    a, b = pair(gen_files["csr_f32"])
    with pytest.raises(KeyError):
        sc.pp.calculate_qc_metrics(b, qc_vars=["ribo"])
    with pytest.raises(KeyError, match="qc_vars: 'ribo' is not a column of adata.var"):
        pp.calculate_qc_metrics(a, qc_vars=["ribo"], inplace=True)
    assert "total_counts" not in a.obs
