"""``oom.concat_on_disk`` vs :func:`anndata.concat` in memory on anndata's ``gen_adata`` objects.

Includes the cases reported wrong in anndata's own ``experimental.concat_on_disk``:
every ``merge`` strategy honoured, ``uns_merge`` (ignored there as of anndata
0.12.19), and obsm kept in an outer join.
"""

from __future__ import annotations

import os
import warnings

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import anndataoom as oom
from anndataoom.cli.__main__ import main as cli_main

pytest.importorskip("awkward")
from anndata.tests.helpers import assert_equal, gen_adata  # noqa: E402

X_TYPES = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "dense": np.asarray}
MERGES = [None, "same", "unique", "first", "only"]


def _inputs(x_types, seed=0):
    """Three objects on overlapping, differently ordered gene sets, with var/uns to merge."""
    rng = np.random.default_rng(seed)
    mems = []
    for i, x in enumerate(x_types):
        a = gen_adata((12 + 3 * i, 30), X_TYPES[x], random_state=np.random.default_rng(seed + i))
        genes = np.sort(rng.choice(30, size=24, replace=False))
        if i == 1:
            genes = genes[::-1]
        a = a[:, genes].copy()
        a.obs_names = [f"c{k}" for k in range(a.n_obs)]  # shared names: index_unique matters
        a.var["same_everywhere"] = np.asarray(a.var_names)
        a.var["differs"] = np.arange(a.n_vars) * (i + 1)
        a.varm["pcs"] = np.tile(np.arange(a.n_vars, dtype=float)[:, None], (1, 2))
        a.uns.update({"common": "x", "per_file": f"f{i}", f"only{i}": i,
                      "nested": {"same": 1, "varies": i}})
        mems.append(a)
    return mems


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same inputs as .h5ad and as Zarr v3 stores, with in-memory copies read back."""
    d = tmp_path_factory.mktemp("inputs")
    out = {}
    for name, kinds in {"mixed": ("csr", "csc", "dense"), "sparse": ("csr", "csr", "csr"),
                        "dense": ("dense", "dense", "dense")}.items():
        paths = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, a in enumerate(_inputs(kinds)):
                p = d / f"{name}{i}.{'zarr' if i == 2 else 'h5ad'}"
                a.write_zarr(p) if i == 2 else a.write_h5ad(p)
                paths.append(p)
            mems = [ad.read_zarr(p) if p.suffix == ".zarr" else ad.read_h5ad(p) for p in paths]
        out[name] = (paths, mems)
    return out


def _read(path):
    return ad.read_zarr(path) if path.suffix == ".zarr" else ad.read_h5ad(path)


def _run(files, tmp_path, case, ext, **kw):
    """Our output, and anndata.concat in memory written by anndata to the same format."""
    paths, mems = files[case]
    out = tmp_path / "ours" / f"atlas.{ext}"
    out.parent.mkdir()
    ref = tmp_path / f"anndata.{ext}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oom.concat_on_disk(paths, out, **kw)
        want = ad.concat(mems, **kw)
        # the round trip through the same format changes some columns alike on both sides
        getattr(want, f"write_{ext}")(ref, convert_strings_to_categoricals=False)
        got, want = _read(out), _read(ref)
    assert os.listdir(out.parent) == [out.name]  # no temp files left
    return got, want


def _same(got, want):
    assert sp.issparse(got.X) == sp.issparse(want.X)
    assert got.X.dtype == want.X.dtype
    for k in want.layers:
        assert sp.issparse(got.layers[k]) == sp.issparse(want.layers[k]), k
    assert_equal(got, want)


@pytest.mark.parametrize("merge", MERGES)
@pytest.mark.parametrize("join", ["inner", "outer"])
def test_join_merge_and_uns_merge(files, tmp_path, join, merge):
    """Every join × merge, each uns_merge twice (paired with another merge)."""
    uns_merge = MERGES[(MERGES.index(merge) + (1 if join == "outer" else 0)) % len(MERGES)]
    # an outer join leaves object columns of bools and NaNs, which only Zarr can hold
    # (anndata's write_h5ad refuses them too)
    ext = "zarr" if join == "outer" else "h5ad"
    got, want = _run(files, tmp_path, "mixed", ext, join=join, merge=merge,
                     uns_merge=uns_merge, index_unique="-")
    _same(got, want)
    assert got.uns.keys() == want.uns.keys()
    if join == "outer":
        assert set(got.obsm) == set(want.obsm) and len(want.obsm)  # outer join keeps obsm


@pytest.mark.parametrize(
    "kw",
    [
        dict(label="batch"),
        dict(label="batch", keys=["a", "b", "c"], index_unique="-"),
        dict(keys=["a", "b", "c"], index_unique="::", join="outer", merge="same"),
        dict(join="outer", fill_value=0, index_unique="-", pairwise=True),
    ],
    ids=["label", "label-keys", "keys-outer", "pairwise"],
)
def test_labels_keys_and_formats(files, tmp_path, kw):
    """label/keys/index_unique/pairwise, on sparse and dense X, into .h5ad and .zarr."""
    ext = "zarr" if "keys" in kw else "h5ad"
    case = "dense" if "label" in kw else "sparse"
    got, want = _run(files, tmp_path, case, ext, **kw)
    _same(got, want)


@pytest.mark.parametrize("case", ["sparse", "mixed"])
def test_outer_fill_value(files, tmp_path, case):
    """A non-zero fill_value is stored in the missing genes, sparse X too (as anndata)."""
    got, want = _run(files, tmp_path, case, "zarr", join="outer", fill_value=-1.5,
                     index_unique="-")
    _same(got, want)
    x = got.X.toarray() if sp.issparse(got.X) else got.X
    assert (x == -1.5).any()


def test_outer_join_of_partial_layers_is_refused(files, tmp_path):
    paths, _ = files["sparse"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ad.read_h5ad(paths[0])
    del a.layers["array"]
    p = tmp_path / "nolayer.h5ad"
    a.write_h5ad(p)
    with pytest.raises(NotImplementedError, match="array"):
        oom.concat_on_disk([p, paths[1]], tmp_path / "o.h5ad", join="outer", index_unique="-")
    assert os.listdir(tmp_path) == ["nolayer.h5ad"]


def test_mapping_inputs_and_objects(files, tmp_path):
    paths, mems = files["mixed"]
    objs = {"x": oom.read(paths[0]), "y": paths[1], "z": oom.read(paths[2])}
    out = tmp_path / "m.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oom.concat_on_disk(objs, out, label="src", index_unique="-")
        want = ad.concat(dict(zip("xyz", mems, strict=True)), label="src", index_unique="-")
        got = ad.read_zarr(out)
    assert os.listdir(tmp_path) == ["m.zarr"]
    _same(got, want)
    # the caller's objects are not closed by the call
    np.testing.assert_allclose(objs["x"].X.sum(), mems[0].X.sum(), rtol=1e-6)


def test_cli(files, tmp_path, capsys):
    paths, mems = files["sparse"]
    out = tmp_path / "cli.zarr"
    rc = cli_main(["concat", *map(str, paths), "-o", str(out), "--join", "outer",
                   "--label", "batch", "--keys", "a,b,c", "--index-unique", "-",
                   "--merge", "same", "--uns-merge", "unique"])
    assert rc == 0, capsys.readouterr().err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ad.concat(mems, join="outer", label="batch", keys=["a", "b", "c"],
                         index_unique="-", merge="same", uns_merge="unique")
        got = ad.read_zarr(out)
    _same(got, want)


def test_bad_inputs(files, tmp_path):
    paths, mems = files["sparse"]
    with pytest.raises(NotImplementedError, match="axis=0"):
        oom.concat_on_disk(paths, tmp_path / "o.h5ad", axis=1)
    with pytest.raises(ValueError, match="expected an .h5ad file or a .zarr store"):
        oom.concat_on_disk(paths, tmp_path / "o.csv")
    with pytest.raises(TypeError, match="in-memory"):
        oom.concat_on_disk([mems[0], paths[1]], tmp_path / "o.h5ad")
    with pytest.raises(FileNotFoundError):
        oom.concat_on_disk([paths[0], tmp_path / "missing.h5ad"], tmp_path / "o.h5ad")
    with pytest.raises(ValueError, match="join"):
        oom.concat_on_disk(paths, tmp_path / "o.h5ad", join="left")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        oom.concat_on_disk(paths, paths[0], index_unique="-")
    assert os.listdir(tmp_path) == []  # nothing written for a refused call
    assert ad.read_h5ad(paths[0]).n_obs == mems[0].n_obs  # the input is intact


def test_cli_errors(files, tmp_path, capsys):
    """Bad command lines exit with 1 and a message, and write nothing."""
    paths, _ = files["sparse"]
    out = str(tmp_path / "o.zarr")
    assert cli_main(["concat", *map(str, paths), "-o", out, "--keys", "a,b"]) == 1
    assert "--keys names 2 inputs, but 3" in capsys.readouterr().err
    assert cli_main(["concat", str(paths[0]), str(tmp_path / "nope.h5ad"), "-o", out]) == 1
    assert "nope.h5ad" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("ext", ["h5ad", "zarr"])
def test_inputs_opened_without_what_the_merge_drops(tmp_path, ext):
    """With merge=None/uns_merge=None the inputs' var columns, varm, uns are not read.

    The result still equals anndata.concat: a named var index (stored under
    its own key), raw with var columns and varm, obsp without ``pairwise``.
    """
    from anndataoom.io._any import open_any
    from anndataoom.io._concat_on_disk import _unused

    mems = []
    for i in range(2):
        a = gen_adata((10 + i, 20), sp.csr_matrix, random_state=np.random.default_rng(i))
        a.var_names = [f"g{k}" for k in range(a.n_vars)]
        a.var.index.name = "symbol"
        a.raw = a.copy()
        mems.append(a)
    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, a in enumerate(mems):
            p = tmp_path / f"in{i}.{ext}"
            getattr(a, f"write_{ext}")(p)
            paths.append(p)
        mems = [_read(p) for p in paths]
    lean = _unused(None, None, False)
    with open_any(paths[0], lean) as o:
        assert list(o.var.columns) == [] and o.var.index.name == "symbol"
        assert o.var_names.equals(mems[0].var_names)
        assert dict(o.uns) == {} and dict(o.varm) == {} and dict(o.obsp) == {}
        assert list(o.raw.var.columns) == [] and o.raw.var_names.equals(mems[0].raw.var_names)
        assert set(o.obsm) == set(mems[0].obsm) and o.obs.equals(mems[0].obs)
    out = tmp_path / f"out.{ext}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oom.concat_on_disk(paths, out, label="batch", index_unique="-")
        want = ad.concat(mems, label="batch", index_unique="-")
        ref = tmp_path / f"ref.{ext}"
        getattr(want, f"write_{ext}")(ref, convert_strings_to_categoricals=False)
        got, want = _read(out), _read(ref)
    _same(got, want)
    assert got.var.index.name == want.var.index.name
    assert got.raw.var_names.equals(want.raw.var_names)


def test_inputs_sharing_a_var_index_read_it_once(tmp_path):
    """Inputs whose var index holds the same strings share one read of it.

    The index is reused by its stored bytes only: a name given to one
    input's index does not reach the others, and indices that differ (in
    one string, or in order) are read each on its own; the result equals
    anndata.concat's.
    """
    from anndataoom import _oom
    from anndataoom.io._any import open_any
    from anndataoom.io._concat_on_disk import _unused

    names = [f"g{k}" for k in range(20)]
    var_sets = [names, names, names[:-1] + ["é"], names[::-1], names]
    mems, paths = [], []
    for i, v in enumerate(var_sets):
        a = gen_adata((8, 20), sp.csr_matrix, random_state=np.random.default_rng(i))
        a.var_names = v
        if i == 1:
            a.var.index.name = "symbol"  # stored under var/symbol
        p = tmp_path / f"in{i}.h5ad"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a.write_h5ad(p)
        paths.append(p)
        mems.append(_read(p))
    stored = [_oom.string_bytes(p, "var/" + ("symbol" if i == 1 else "_index"))
              for i, p in enumerate(paths)]
    assert stored[0] == stored[1] == stored[4] != stored[2] != stored[3]
    assert _oom.string_bytes(paths[0], "obs") is None  # a group
    assert _oom.string_bytes(paths[0], "X/data") is None  # numbers
    assert _oom.string_bytes(paths[0], "nope") is None
    seen: dict = {}
    opened = [open_any(p, _unused(None, None, False), seen) for p in paths]
    assert len(seen) == 3
    assert [o.var.index.name for o in opened] == [None, "symbol", None, None, None]
    for o, m in zip(opened, mems, strict=True):
        assert o.var_names.equals(m.var_names)
        o.close()
    for join in ("inner", "outer"):
        out = tmp_path / f"out_{join}.h5ad"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            oom.concat_on_disk(paths, out, join=join, label="batch", index_unique="-")
            want = ad.concat(mems, join=join, label="batch", index_unique="-")
            ref = tmp_path / f"ref_{join}.h5ad"
            want.write_h5ad(ref, convert_strings_to_categoricals=False)
            got, want = _read(out), _read(ref)
        _same(got, want)


@pytest.mark.parametrize("ext", ["h5ad", "zarr"])
def test_outer_join_of_a_string_column_some_inputs_lack(tmp_path, ext):
    """Cells of an input without the column get NaN in a categorical, as anndata writes it.

    (h5ad output raised TypeError; zarr stored the string 'nan'.)
    """
    mems = []
    for i, with_col in enumerate([True, False]):
        a = ad.AnnData(sp.random(30, 8, density=0.3, format="csr", dtype=np.float32,
                                 random_state=i))
        a.obs_names = [f"c{i}_{j}" for j in range(30)]
        if with_col:
            a.obs["barcode"] = [f"b{j % 7}" for j in range(30)]
        a.write_h5ad(tmp_path / f"in{i}.h5ad", convert_strings_to_categoricals=False)
        mems.append(a)
    out = tmp_path / f"out.{ext}"
    oom.concat_on_disk([tmp_path / "in0.h5ad", tmp_path / "in1.h5ad"], out, join="outer")
    ref = tmp_path / f"ref.{ext}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(ad.concat(mems, join="outer"), f"write_{ext}")(ref)
        got, want = _read(out), _read(ref)
    assert got.obs["barcode"].dtype == "category"
    assert got.obs["barcode"].isna().sum() == 30
    assert_equal(got, want)
