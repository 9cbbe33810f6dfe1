"""``anndata.concat`` / ``AnnData.concatenate`` on AnnDataOOM inputs: lazy, and equal to anndata.

The inputs are anndata's own test objects (``anndata.tests.helpers.gen_adata``)
written to ``.h5ad``; the oracle is the same call on the files read by anndata.
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal, gen_adata

import anndataoom as oom
from anndataoom._core._guard import AnnDataConcatWarning


@pytest.fixture
def files(tmp_path):
    """Three files with overlapping, differently ordered variables and clashing obs names."""
    rng = np.random.default_rng(0)
    paths = []
    for i, (n_obs, fmt) in enumerate([(20, "csr"), (15, "csr"), (12, "csr")]):
        a = gen_adata((n_obs, 30), sp.csr_matrix, obsm_types=(np.ndarray, sp.csr_matrix),
                      varm_types=(np.ndarray,), layers_types=(sp.csr_matrix,),
                      random_state=np.random.default_rng(i), sparse_fmt=fmt)
        keep = np.sort(rng.choice(30, size=24, replace=False))
        a = a[:, keep[::-1] if i == 1 else keep].copy()
        a.uns = {"shared": 1, "own": f"file{i}", "nested": {"k": i, "same": "x"}}
        p = tmp_path / f"part{i}.h5ad"
        a.write_h5ad(p)
        paths.append(p)
    return paths


def _pair(paths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [oom.read(p) for p in paths], [ad.read_h5ad(p) for p in paths]


OPTIONS = [
    dict(join="inner"),
    dict(join="outer", label="batch", keys=["a", "b", "c"], index_unique="-"),
    dict(join="inner", merge="same", uns_merge="same"),
    dict(join="outer", merge="unique", uns_merge="unique", label="src"),
    dict(join="outer", merge="first", uns_merge="first", index_unique="_"),
    dict(join="inner", merge="only", uns_merge="only", keys=["x", "y", "z"], label="k"),
    dict(join="outer", fill_value=0),
]


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_anndata_concat_is_lazy_and_equal(files, opts):
    lazy, mem = _pair(files)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = ad.concat(lazy, **opts)
        want = ad.concat(mem, **opts)
    assert isinstance(got, oom.AnnDataOOM) and isinstance(got.X, oom.BackedArray)
    assert all(isinstance(v, oom.BackedArray) for v in got.layers.values())
    assert_equal(got.to_memory(), want)


def test_mapping_input_and_concatenate(files):
    lazy, mem = _pair(files)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = ad.concat(dict(zip("abc", lazy, strict=True)), label="batch")
        want = ad.concat(dict(zip("abc", mem, strict=True)), label="batch")
        assert isinstance(got.X, oom.BackedArray)
        assert_equal(got.to_memory(), want)
        for kw in ({}, {"join": "outer", "batch_key": "b", "batch_categories": ["p", "q", "r"]}):
            got = lazy[0].concatenate(*lazy[1:], **kw)
            want = mem[0].concatenate(*mem[1:], **kw)
            assert isinstance(got, oom.AnnDataOOM) and isinstance(got.X, oom.BackedArray)
            assert_equal(got.to_memory(), want)


def test_mixed_inputs_stay_sparse_and_warn(files):
    lazy, mem = _pair(files)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        # the parts share cell names; pytest.warns re-emits that warning as its own
        warnings.filterwarnings("ignore", "Observation names are not unique", UserWarning)
        with pytest.warns(AnnDataConcatWarning, match="oom.concat|anndataoom.concat"):
            got = ad.concat([lazy[0], mem[1]], join="outer")
        want = ad.concat([mem[0], mem[1]], join="outer")
    assert sp.issparse(got.X)  # never densified
    assert_equal(got, want)


def test_mixed_inputs_above_the_cap_are_refused(files, monkeypatch):
    lazy, mem = _pair(files)
    monkeypatch.setenv("ANNDATAOOM_MAX_DENSE_BYTES", "100")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(oom.InMemoryRequiredError, match="anndata.concat"):
            ad.concat([lazy[0], mem[1]])


def test_plain_anndata_is_untouched(files):
    _, mem = _pair(files)
    got = ad.concat(mem[:2])
    assert type(got) is ad.AnnData
    assert ad.concat is ad._core.merge.concat
