"""``oom.concat``: lazy row concatenation vs :func:`anndata.concat` in memory."""

from __future__ import annotations

import os
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import anndataoom as oom
from anndataoom._core._backed_array import BackedArray
from anndataoom.testing import gen_h5ad


def _dense(x):
    if isinstance(x, BackedArray):
        x = x.to_memory()
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def _parts(tmp_path, fmts, *, n_vars=40, seed=0, with_layer=True):
    """Files with overlapping, differently ordered var sets; returns paths and in-memory copies."""
    rng = np.random.default_rng(seed)
    paths, mems = [], []
    for i, fmt in enumerate(fmts):
        full = gen_h5ad(tmp_path / f"full{i}.h5ad", n_obs=30 + 7 * i, n_vars=n_vars, fmt=fmt,
                        density=0.3, seed=seed + i)
        keep = np.sort(rng.choice(n_vars, size=n_vars - 8, replace=False))
        if i == 1:
            keep = keep[::-1]  # a different gene order
        part = full[:, keep].copy()
        part.obs_names = [f"f{i}_{k}" for k in range(part.n_obs)]
        if with_layer:
            part.layers["counts"] = part.X.copy()
        part.obsm["X_emb"] = rng.normal(size=(part.n_obs, 3))
        part.uns = {"source": f"file{i}"}
        p = tmp_path / f"part{i}.h5ad"
        part.write_h5ad(p)
        paths.append(p)
        mems.append(part)
    return paths, mems


def _expected(mems, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.concat(mems, **kw)


def _check(got, want, *, layers=True):
    assert isinstance(got, oom.AnnDataOOM)
    assert isinstance(got.X, BackedArray)
    assert got.shape == want.shape
    assert list(got.obs_names) == list(want.obs_names)
    assert list(got.var_names) == list(want.var_names)
    pd.testing.assert_frame_equal(got.obs, want.obs)
    pd.testing.assert_frame_equal(got.var, want.var)
    gx, wx = _dense(got.X), _dense(want.X)
    assert got.X.is_sparse == sp.issparse(want.X)
    assert gx.dtype == wx.dtype, (gx.dtype, wx.dtype)
    np.testing.assert_array_equal(gx, wx)
    assert set(got.obsm) == set(want.obsm)
    for k in want.obsm:
        np.testing.assert_array_equal(got.obsm[k], want.obsm[k])
    if layers:
        assert set(got.layers) == set(want.layers)
        for k in want.layers:
            np.testing.assert_array_equal(_dense(got.layers[k]), _dense(want.layers[k]))


@pytest.mark.parametrize("join", ["inner", "outer"])
@pytest.mark.parametrize("fmts", [("csr", "csr", "csr"), ("csr", "csc", "csr"),
                                  ("dense", "dense", "dense"), ("csr", "dense", "csc")])
def test_concat_matches_anndata(tmp_path, join, fmts):
    paths, mems = _parts(tmp_path, fmts)
    got = oom.concat([oom.read(p) for p in paths], join=join, label="batch",
                     keys=["a", "b", "c"], index_unique="-")
    want = _expected(mems, join=join, label="batch", keys=["a", "b", "c"], index_unique="-")
    _check(got, want)
    assert got.obs["batch"].tolist() == want.obs["batch"].tolist()


@pytest.mark.parametrize("fill_value", [None, 0, 7])
@pytest.mark.parametrize("fmts", [("csr", "csr", "dense"), ("dense", "csc", "dense")])
def test_concat_layers_missing_from_some_inputs(tmp_path, fmts, fill_value):
    """Outer join keeps a layer some inputs lack, their cells filled, in anndata's type."""
    paths, mems = _parts(tmp_path, fmts, with_layer=False)
    for i, (p, m) in enumerate(zip(paths, mems, strict=True)):
        if i != 1:
            m.layers["counts"] = m.X.copy()
        if i == 2:
            m.layers["ints"] = np.ones(m.shape, dtype=np.int32)
        m.write_h5ad(p)
    for join in ("inner", "outer"):
        got = oom.concat([oom.read(p) for p in paths], join=join, fill_value=fill_value)
        want = _expected(mems, join=join, fill_value=fill_value)
        _check(got, want, layers=False)
        assert list(got.layers) == list(want.layers)
        for k, w in want.layers.items():
            g = _dense(got.layers[k])
            assert got.layers[k].is_sparse == sp.issparse(w), k
            assert g.dtype == _dense(w).dtype, (k, g.dtype, _dense(w).dtype)
            np.testing.assert_array_equal(g, _dense(w))


def test_concat_paths_mapping_and_merge(tmp_path):
    paths, mems = _parts(tmp_path, ("csr", "csr"))
    got = oom.concat({"x": paths[0], "y": paths[1]}, label="src", merge="same",
                     uns_merge="unique")
    want = _expected({"x": mems[0], "y": mems[1]}, label="src", merge="same",
                     uns_merge="unique")
    _check(got, want)
    assert got.uns == want.uns


def test_concat_of_subsets_and_reads(tmp_path):
    paths, mems = _parts(tmp_path, ("csr", "csc"))
    a, b = oom.read(paths[0]), oom.read(paths[1])
    rows = np.array([5, 1, 1, 20, 3])
    a_sub = a[rows]
    b_sub = b[::-2, : b.n_vars - 3]
    got = oom.concat([a_sub, b_sub], join="outer")
    want = _expected([mems[0][rows].copy(), mems[1][::-2, : b.n_vars - 3].copy()], join="outer")
    _check(got, want)
    # unsorted/duplicate row selection of the concatenation, and column subsets
    idx = np.array([7, 0, 7, got.n_obs - 1, 2])
    np.testing.assert_array_equal(_dense(got[idx, ::3].X), _dense(want.X[idx][:, ::3]))
    np.testing.assert_allclose(got.X.sum(axis=0), np.ravel(want.X.sum(axis=0)), rtol=1e-6)
    np.testing.assert_allclose(got.X.sum(axis=1), np.ravel(want.X.sum(axis=1)), rtol=1e-6)
    for start, end, block in got.X.chunked(4):
        np.testing.assert_array_equal(_dense(block), _dense(want.X[start:end]))


def test_concat_write_roundtrip(tmp_path):
    paths, mems = _parts(tmp_path, ("csr", "csr", "dense"))
    got = oom.concat(paths, join="outer", label="batch")
    want = _expected(mems, join="outer", label="batch")
    out = tmp_path / "out" / "concat.h5ad"
    out.parent.mkdir()
    got.write_h5ad(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = ad.read_h5ad(out)
    assert sp.issparse(back.X)
    np.testing.assert_array_equal(back.X.toarray(), _dense(want.X))
    np.testing.assert_array_equal(_dense(back.layers["counts"]), _dense(want.layers["counts"]))
    assert back.obs["batch"].tolist() == want.obs["batch"].tolist()
    assert os.listdir(out.parent) == ["concat.h5ad"]


def test_concat_then_pp_matches_scanpy(tmp_path):
    import scanpy as sc

    paths, mems = _parts(tmp_path, ("csr", "csc"))
    got = oom.concat(paths)
    want = _expected(mems)
    oom.pp.normalize_total(got, target_sum=1e4)
    oom.pp.log1p(got)
    sc.pp.normalize_total(want, target_sum=1e4)
    sc.pp.log1p(want)
    np.testing.assert_allclose(_dense(got.X), _dense(want.X), rtol=1e-6, atol=1e-7)


def test_concat_nothing_read_from_disk_until_asked(tmp_path):
    paths, _ = _parts(tmp_path, ("csr", "csr"))
    before = sorted(os.listdir(tmp_path))
    got = oom.concat(paths)
    assert got.X.matrix.key == "X (concat of 2)"
    assert "concat of 2" in repr(got.X)
    assert sorted(os.listdir(tmp_path)) == before  # no sidecar or spill files


def test_concat_errors(tmp_path):
    paths, mems = _parts(tmp_path, ("csr", "csr"))
    with pytest.raises(ValueError, match="No objects"):
        oom.concat([])
    with pytest.raises(NotImplementedError, match="axis=0"):
        oom.concat(paths, axis=1)
    with pytest.raises(ValueError, match="join"):
        oom.concat(paths, join="left")
    a = oom.read(paths[0])
    a.X = mems[0].X
    with pytest.raises(TypeError, match="in memory"):
        oom.concat([a, oom.read(paths[1])])
    # all in memory: plain anndata.concat
    assert type(oom.concat(mems)) is ad.AnnData


def test_concat_with_an_input_without_x_is_refused_as_anndata_does(tmp_path, capsys):
    """Dropping X because one input has none would lose every other input's data."""
    paths, mems = _parts(tmp_path, ("csr", "csr"), with_layer=False)
    no_x = mems[0].copy()
    no_x.X = None
    p = tmp_path / "no_x.h5ad"
    no_x.write_h5ad(p)
    with pytest.raises(NotImplementedError, match="had no .X value") as want:
        ad.concat([no_x, mems[1]])
    for inputs in ([p, paths[1]], [oom.read(p), oom.read(paths[1])]):
        with pytest.raises(NotImplementedError, match=r"had no \.X value: inputs \[0\]"):
            oom.concat(inputs)
    with pytest.raises(NotImplementedError, match="had no .X value"):
        ad.concat([oom.read(p), oom.read(paths[1])])
    out = tmp_path / "out.h5ad"
    with pytest.raises(NotImplementedError, match="had no .X value"):
        oom.concat_on_disk([p, paths[1]], out)
    assert not out.exists()
    assert "had no .X value" in str(want.value)
    from anndataoom.cli.__main__ import main as cli_main

    assert cli_main(["concat", str(paths[1]), str(p), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("anndataoom: error: Some (but not all)") and "Traceback" not in err
    assert not out.exists()
    # none with X: the result has none either, as anndata
    assert oom.concat([p, p]).X is None


def test_concat_raw(tmp_path):
    paths, mems = _parts(tmp_path, ("csr", "csc"))
    for p, m in zip(paths, mems, strict=True):
        m.raw = m
        m.write_h5ad(p)
    got = oom.concat(paths, join="outer", label="batch")
    want = _expected(mems, join="outer", label="batch")
    assert isinstance(got.raw.X, BackedArray)
    assert list(got.raw.var_names) == list(want.raw.var_names)
    np.testing.assert_array_equal(_dense(got.raw.X), _dense(want.raw.X))
    with pytest.warns(UserWarning, match="raw"):
        oom.concat([oom.read(paths[0]), _no_raw(oom.read(paths[1]))])


def _no_raw(a):
    del a.raw
    return a
