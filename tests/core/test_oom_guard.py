"""``oom.oom_guard``: every change written back; decorator, decorator factory, context manager; cap."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp

import anndataoom as oom


@pytest.fixture
def pair(make_h5ad):
    """An AnnDataOOM and the same data in memory (counts, with obs/var columns)."""
    path, mem = make_h5ad(n_obs=120, n_vars=70, density=0.3, seed=8)
    return oom.read(path), mem


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", oom.OOMMaterializeWarning)
        return fn(*args, **kwargs)


def test_normalize_total_result_is_written_back(pair):
    a, mem = pair
    guarded = oom.oom_guard()(sc.pp.normalize_total)
    with pytest.warns(oom.OOMMaterializeWarning, match="into memory on purpose"):
        guarded(a, target_sum=1e4)
    sc.pp.normalize_total(mem, target_sum=1e4)
    np.testing.assert_allclose(a.X.toarray(), mem.X.toarray(), rtol=1e-6)  # X written back


def test_hvg_writes_var_and_uns_back(pair):
    a, mem = pair
    for x in (a, mem):
        _quiet(oom.oom_guard(sc.pp.log1p), x) if x is a else sc.pp.log1p(x)
    _quiet(oom.oom_guard()(sc.pp.highly_variable_genes), a, n_top_genes=20)
    sc.pp.highly_variable_genes(mem, n_top_genes=20)
    for c in ("highly_variable", "means", "dispersions", "dispersions_norm"):
        pd.testing.assert_series_equal(a.var[c], mem.var[c], check_names=False)
    assert a.uns["hvg"] == mem.uns["hvg"]
    assert a.uns["log1p"] == mem.uns["log1p"]


def test_context_manager_writes_every_slot_back(pair):
    a, _ = pair
    before_obs = list(a.obs.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", oom.OOMMaterializeWarning)
        with oom.oom_guard(a) as mem:
            mem.layers["half"] = mem.X * 0.5
            mem.obs["score"] = np.arange(mem.n_obs, dtype=float)
            del mem.obs[before_obs[0]]
            mem.var["flag"] = True
            mem.obsm["X_two"] = np.ones((mem.n_obs, 2))
            mem.varm["V"] = np.zeros((mem.n_vars, 3))
            mem.obsp["conn"] = sp.identity(mem.n_obs, format="csr")
            mem.uns["note"] = {"k": 1}
    np.testing.assert_allclose(a.layers["half"].toarray(), a.X.toarray() * 0.5)
    np.testing.assert_array_equal(a.obs["score"], np.arange(a.n_obs))
    assert before_obs[0] not in a.obs.columns
    assert a.var["flag"].all()
    assert a.obsm["X_two"].shape == (a.n_obs, 2)
    assert a.varm["V"].shape == (a.n_vars, 3)
    assert a.obsp["conn"].nnz == a.n_obs
    assert a.uns["note"] == {"k": 1}
    assert isinstance(a.X, oom.BackedArray)  # X untouched: still lazy


def test_context_manager_follows_a_subset_and_skips_on_error(pair):
    a, _ = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", oom.OOMMaterializeWarning)
        with oom.oom_guard(a) as mem:
            sc.pp.filter_cells(mem, min_genes=22)
        kept = mem.obs_names
        assert a.obs_names.equals(kept) and a.n_obs < 120
        assert isinstance(a.X, oom.BackedArray)  # a subset of rows stays lazy
        n = a.n_obs
        with pytest.raises(RuntimeError), oom.oom_guard(a) as mem:
            mem.obs["x"] = 1
            raise RuntimeError
    assert "x" not in a.obs and a.n_obs == n


def test_forms_and_passthrough(pair):
    a, mem = pair

    @oom.oom_guard
    def bare(adata):
        adata.uns["bare"] = True
        return adata

    @oom.oom_guard(materialize=True, result_keys_obs=["S"], result_keys_uns=["*"])
    def ov_style(adata):  # omicverse's usage (score_genes_cell_cycle)
        adata.obs["S"] = 1.0
        adata.obs["ignored"] = 2.0
        adata.uns["x"] = 1

    assert _quiet(bare, a) is a and a.uns["bare"] is True  # the function returned its input
    _quiet(ov_style, adata=a)
    assert "S" in a.obs and "ignored" not in a.obs and a.uns["x"] == 1
    assert bare(mem) is mem  # in-memory objects pass through untouched
    with oom.oom_guard(mem) as m:
        assert m is mem
    with pytest.raises(TypeError, match="needs the object"), oom.oom_guard():
        pass
    with pytest.raises(NotImplementedError, match="use oom.pp"):
        oom.oom_guard(materialize=False, suggest="use oom.pp")(lambda adata: None)(a)


def test_refused_above_the_memory_cap(pair, monkeypatch):
    a, _ = pair
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", "1000")
    obs_before = list(a.obs.columns)
    with pytest.raises(oom.InMemoryRequiredError, match="ANNDATAOOM_MAX_DENSE_BYTES"):
        oom.oom_guard()(sc.pp.normalize_total)(a)
    with pytest.raises(oom.InMemoryRequiredError), oom.oom_guard(a):
        pass
    assert list(a.obs.columns) == obs_before and isinstance(a.X, oom.BackedArray)


@pytest.mark.parametrize("value", ["1GB", "-5", "nan"])
def test_a_bad_memory_cap_is_an_error_not_the_default(pair, monkeypatch, value):
    a, _ = pair
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", value)
    with pytest.raises(ValueError, match="ANNDATAOOM_MAX_DENSE_BYTES must be a number of bytes"):
        np.asarray(a.X)
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", "1e9")
    assert np.asarray(a.X).shape == a.shape
