"""Every anndata index form on AnnDataOOM vs anndata in memory (the oracle)."""

from __future__ import annotations

import gc

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import anndataoom as oom
from anndataoom.testing import FORMATS, assert_adata_equal, assert_x_equal, dense

N_OBS, N_VARS = 60, 40


def _obs_forms(mem: ad.AnnData):
    """(id, index) for one axis of length N_OBS with names mem.obs_names."""
    names = mem.obs_names
    rng = np.random.default_rng(0)
    mask = rng.random(N_OBS) < 0.4
    return [
        ("all", slice(None)),
        ("slice", slice(5, 23)),
        ("slice_step", slice(1, None, 4)),
        ("slice_negstep", slice(None, None, -1)),
        ("slice_negstep2", slice(50, 3, -7)),
        ("slice_negbounds", slice(-10, -2)),
        ("slice_empty", slice(7, 7)),
        ("int", 4),
        ("int_neg", -1),
        ("np_int", np.int64(17)),
        ("arr_unsorted", np.array([9, 2, 30, 0])),
        ("arr_dups", np.array([3, 3, 3, 1, 3])),
        ("arr_neg", np.array([-1, -N_OBS, 5, -3])),
        ("list_ints", [2, 0, 1]),
        ("arr_empty", np.array([], dtype=np.int64)),
        ("bool_mask", mask),
        ("bool_series", pd.Series(mask, index=names)),
        ("name", names[11]),
        ("names_list", [names[8], names[1], names[8]]),
        ("names_index", pd.Index([names[20], names[3]])),
    ]


def _var_forms(mem: ad.AnnData):
    names = mem.var_names
    rng = np.random.default_rng(1)
    mask = rng.random(N_VARS) < 0.5
    return [
        ("all", slice(None)),
        ("slice", slice(3, 17)),
        ("slice_negstep", slice(None, None, -2)),
        ("int", 6),
        ("int_neg", -2),
        ("arr_unsorted", np.array([30, 1, 7])),
        ("arr_dups", np.array([0, 0, 39, 0])),
        ("arr_neg", np.array([-1, 2, -40])),
        ("bool_mask", mask),
        ("bool_series", pd.Series(mask, index=names)),
        ("name", names[13]),
        ("names_list", [names[39], names[0]]),
        ("names_index", pd.Index([names[5], names[4], names[5]])),
    ]


@pytest.fixture(scope="module", params=FORMATS)
def files(request, tmp_path_factory):
    from anndataoom.testing import gen_h5ad

    path = tmp_path_factory.mktemp(f"sub_{request.param}") / "x.h5ad"
    gen_h5ad(path, n_obs=N_OBS, n_vars=N_VARS, fmt=request.param, density=0.3, seed=7)
    mem = ad.read_h5ad(path)
    return path, mem


def _check(a, mem, index):
    ours = a[index]
    assert isinstance(ours, oom.AnnDataOOM)
    assert not ours.is_view
    expected = mem[index]
    assert_adata_equal(ours, expected)
    return ours, expected


def _ids(forms):
    return [f[0] for f in forms]


_mem0 = ad.AnnData(
    obs=pd.DataFrame(index=[f"cell_{i:06d}" for i in range(N_OBS)]),
    var=pd.DataFrame(index=[f"g{j}" for j in range(N_VARS)]),
)
OBS_FORMS = _obs_forms(_mem0)


@pytest.mark.parametrize("form", range(len(OBS_FORMS)), ids=_ids(OBS_FORMS))
def test_rows(files, form):
    path, mem = files
    _, index = _obs_forms(mem)[form]
    a = oom.read(path)
    _check(a, mem, index)
    _check(a, mem, (index, slice(None)))


@pytest.mark.parametrize("form", range(13))
def test_cols(files, form):
    path, mem = files
    _, index = _var_forms(mem)[form]
    a = oom.read(path)
    _check(a, mem, (slice(None), index))


@pytest.mark.parametrize(
    "pair",
    [(0, 0), (1, 2), (3, 5), (7, 3), (10, 6), (11, 7), (12, 8), (15, 9), (17, 10), (18, 11),
     (19, 12), (8, 4), (14, 1)],
)
def test_rows_and_cols(files, pair):
    path, mem = files
    r = _obs_forms(mem)[pair[0]][1]
    c = _var_forms(mem)[pair[1]][1]
    a = oom.read(path)
    _check(a, mem, (r, c))


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
def test_array_with_strided_slice(files):
    """csr[array, strided slice] fails in scipy 1.17 (so in anndata); ours works."""
    path, mem = files
    a = oom.read(path)
    rows = np.array([7, 0, 7, 59])
    ours = a[rows, ::3]
    expected = mem[rows].copy()[:, ::3]
    assert_adata_equal(ours, expected)
    np.testing.assert_array_equal(dense(ours.X), dense(mem.X)[rows][:, ::3])


def test_other_elements_follow(files):
    path, mem = files
    a = oom.read(path)
    idx = np.array([5, 0, 5, 33])
    cols = np.array([3, 1])
    s = a[idx, cols]
    e = mem[idx, cols]
    np.testing.assert_array_equal(s.obsm["X_rand"], e.obsm["X_rand"])
    assert list(s.obs["batch"].cat.categories) == list(e.obs["batch"].cat.categories)
    assert s.uns["note"] == e.uns["note"]
    assert list(s.var["gene_ids"]) == list(e.var["gene_ids"])


def test_nested(files):
    path, mem = files
    a = oom.read(path)
    first = (np.array([10, 3, 3, 50, 20, 7]), slice(None, None, -1))
    second = (np.array([-1, 0, 2, 2]), np.array([5, 0, 39]))
    ours = a[first][second]
    expected = mem[first][second]
    assert_adata_equal(ours, expected)
    # three levels, with masks and names
    third = ours.obs_names[0]  # a name (the index has duplicates, so not a list)
    assert_adata_equal(ours[third, ours.var_names[0]], expected[third, expected.var_names[0]])


def test_subset_layers_and_raw(files):
    path, mem = files
    a = oom.read(path)
    a.layers["counts"] = a.X
    a.raw = a
    mem = mem.copy()
    mem.layers["counts"] = mem.X.copy()
    mem.raw = mem
    idx, cols = np.array([4, 4, 1]), [2, 9]
    s, e = a[idx, cols], mem[idx, cols]
    assert_x_equal(s.layers["counts"], e.layers["counts"])
    assert s.raw is not None and s.raw.shape == e.raw.shape
    assert_x_equal(s.raw.X, e.raw.X)
    assert list(s.raw.var_names) == list(e.raw.var_names)


def test_index_errors(files):
    path, mem = files
    a = oom.read(path)
    for bad in (N_OBS, -N_OBS - 1, np.array([0, N_OBS]), [-N_OBS - 1]):
        with pytest.raises(IndexError):
            a[bad]
    with pytest.raises(IndexError):
        a[:, N_VARS]
    with pytest.raises(IndexError):
        a[:, np.array([1, -N_VARS - 1])]
    with pytest.raises(IndexError):
        a[np.ones(N_OBS - 1, dtype=bool)]
    with pytest.raises(IndexError):
        a[:, np.ones(N_VARS + 1, dtype=bool)]
    with pytest.raises(KeyError):
        a["no-such-cell"]
    with pytest.raises(KeyError):
        a[:, ["Gene00000", "no-such-gene"]]
    with pytest.raises(KeyError):
        a[:, pd.Index(["nope"])]
    with pytest.raises(IndexError):
        a[1, 2, 3]


def test_index_error_raised_at_indexing_time(files):
    """A bad index fails when indexing, not on first data access."""
    path, _ = files
    X = oom.read(path).X
    with pytest.raises(IndexError):
        X[np.array([N_OBS + 5])]


def test_subset_after_parent_deleted(files):
    path, mem = files
    a = oom.read(path)
    s = a[np.array([9, 1, 1]), 3:12]
    del a
    gc.collect()
    assert_adata_equal(s, mem[np.array([9, 1, 1]), 3:12])


def test_subset_after_parent_closed(files):
    path, mem = files
    a = oom.read(path)
    s = a[::2]
    c = a.copy()
    a.close()
    assert_adata_equal(s, mem[::2])
    assert_adata_equal(c, mem)
    with pytest.raises(ValueError):
        _ = a.X


def test_inplace_subset_obs(files):
    path, mem = files
    a = oom.read(path)
    ident = id(a)
    a.layers["counts"] = a.X
    a.raw = a
    a.obsp["conn"] = np.arange(N_OBS * N_OBS, dtype=float).reshape(N_OBS, N_OBS)
    mask = (np.arange(N_OBS) % 3) != 0
    expected = mem.copy()
    expected.layers["counts"] = expected.X.copy()
    expected.raw = expected
    expected.obsp["conn"] = a.obsp["conn"].copy()
    expected._inplace_subset_obs(mask)
    a._inplace_subset_obs(mask)
    assert id(a) == ident
    assert_adata_equal(a, expected)
    # raw rows follow obs
    assert a.raw.shape == expected.raw.shape
    assert_x_equal(a.raw.X, expected.raw.X)
    assert list(a.raw.obs_names) == list(a.obs_names)
    # obsp is subset on both axes, as anndata does
    np.testing.assert_array_equal(a.obsp["conn"], expected.obsp["conn"])
    # the object stays fully usable
    assert a.X.sum() == expected.X.sum()
    a.layers["again"] = a.X
    assert a.layers["again"].shape == a.shape


def test_inplace_subset_var(files):
    path, mem = files
    a = oom.read(path)
    a.raw = a
    expected = mem.copy()
    expected.raw = expected
    keep = np.array([True] * N_VARS)
    keep[[0, 5, 39]] = False
    a._inplace_subset_var(keep)
    expected._inplace_subset_var(keep)
    assert_adata_equal(a, expected)
    assert a.raw.shape == expected.raw.shape == (N_OBS, N_VARS)
    # names and integer positions too
    a._inplace_subset_var([a.var_names[3], a.var_names[1]])
    expected._inplace_subset_var([expected.var_names[3], expected.var_names[1]])
    assert_adata_equal(a, expected)
    a._inplace_subset_obs(np.array([5, 2]))
    expected._inplace_subset_obs(np.array([5, 2]))
    assert_adata_equal(a, expected)


def test_subset_method(files):
    path, mem = files
    a = oom.read(path)
    names = list(a.obs_names[[4, 2]])
    s = a.subset(obs_indices=names, inplace=False)
    assert_adata_equal(s, mem[names])
    a.subset(obs_indices=np.array([1, 3, 5]), var_indices=np.array([0, 2]))
    assert_adata_equal(a, mem[[1, 3, 5], [0, 2]])


def test_pbmc3k_subsets(pbmc3k_path):
    mem = ad.read_h5ad(pbmc3k_path)
    a = oom.read(pbmc3k_path)
    rng = np.random.default_rng(5)
    rows = rng.integers(-2700, 2700, size=500)
    cols = rng.integers(0, 32738, size=300)
    assert_adata_equal(a[rows, cols], mem[rows, cols])
    genes = ["CD3D", "LYZ", "MS4A1", "CD3D"]
    assert_adata_equal(a[::-7, genes], mem[::-7, genes])
    X = a[:, "LYZ"].X.to_memory()
    assert_x_equal(X, mem[:, "LYZ"].X)


def test_obsm_dataframe_categories_follow_anndata(tmp_path):
    """anndata's DataFrame views drop unused categories in obsm/varm as in obs."""
    n = 6
    mem = ad.AnnData(np.ones((n, 3), np.float32))
    mem.obs_names = [f"c{i}" for i in range(n)]
    mem.obsm["df"] = pd.DataFrame(
        {"kind": pd.Categorical(list("aaabbb")), "kind2": pd.Categorical(list("xyxyxy")),
         "n": np.arange(n)}, index=mem.obs_names)
    mem.write_h5ad(tmp_path / "c.h5ad")
    mem = ad.read_h5ad(tmp_path / "c.h5ad")
    a = oom.read(tmp_path / "c.h5ad")
    for idx in (slice(0, 2), np.array([4, 3]), slice(None)):
        for ours in (a[idx].obsm["df"], a[idx].copy().obsm["df"],
                     a[idx].to_memory().obsm["df"]):
            pd.testing.assert_frame_equal(ours, pd.DataFrame(mem[idx].obsm["df"]))
