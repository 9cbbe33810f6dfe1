"""Lazy matrices pickle as their plan and rebuild, in any process, into the same values.

The plan is the core's own description of the view (source file, selection,
transforms, cast); these tests build views through every door a user has —
``oom.pp``, ``BackedArray`` methods, raw ``_oom`` calls as the 0.1.8
``chunked_*`` API makes them, ``oom.concat`` — and compare the rebuilt view's
values bit for bit with the original's.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

import anndataoom as oom
from anndataoom import _oom


def _dense(x) -> np.ndarray:
    v = x.to_memory() if hasattr(x, "to_memory") else x
    return v.toarray() if sp.issparse(v) else np.asarray(v)


def _same(a, b) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    da, db = _dense(a), _dense(b)
    assert da.dtype == db.dtype
    np.testing.assert_array_equal(da.view(np.uint8), db.view(np.uint8))


def _read_all(m: _oom.Matrix) -> np.ndarray:
    raw = m.read(0, m.shape[0])
    if raw[0] == "csr":
        _, data, indices, indptr, shape = raw
        return sp.csr_matrix((data, indices, indptr), shape=shape).toarray()
    return raw[1]


def _pipeline(path):
    a = oom.read(path)
    oom.pp.normalize_total(a, target_sum=1e4)
    oom.pp.log1p(a)
    a = a[3:, :]
    oom.pp.scale(a, max_value=5)
    return a


def test_pp_pipeline_round_trips(small_file):
    a = _pipeline(small_file)
    x = a.X
    back = pickle.loads(pickle.dumps(x))
    assert type(back) is type(x) and back.transforms == x.transforms
    _same(x, back)
    sub = x[::2, [5, 1, 1, 30]]
    _same(sub, pickle.loads(pickle.dumps(sub)))


def test_every_lazy_transform_round_trips(make_h5ad):
    path, _ = make_h5ad(n_obs=50, n_vars=30, fmt="csr", density=0.4, seed=5)
    base = _oom.open(str(path), "X")
    n, g = base.shape
    rng = np.random.default_rng(0)
    rows = rng.random(n) + 0.5
    cols = rng.random(g) + 0.5
    row_sum, _, col_sum, _ = base.axis_sums()
    design = np.column_stack([np.ones(n), rng.random(n)])
    views = {
        "normalize": _oom.lazy_normalize(base, rows),
        "log1p": _oom.lazy_log1p(base, 2.0),
        "scale": _oom.lazy_scale(base, cols, cols + 1, True, 3.0, rng.random(n) > 0.3),
        "cast": _oom.lazy_cast(base, "float64"),
        "multiply": _oom.lazy_multiply(base, 2.0, rows, cols, "float64"),
        "power": _oom.lazy_power(base, 1.5),
        "sqrt": _oom.lazy_sqrt(base),
        "pearson": _oom.lazy_pearson_residuals(base, row_sum + 1, col_sum + 1,
                                               float(row_sum.sum()) + 1, 100.0, 7.0),
        "regress": _oom.lazy_regress(base, np.ascontiguousarray(rng.random((2, g))), "float64",
                                     design=design),
        "regress groups": _oom.lazy_regress(base, np.ascontiguousarray(rng.random((3, g))),
                                            "float32", codes=(np.arange(n) % 3).astype(np.uint32),
                                            ngroups=3),
        "downsample": _oom.lazy_downsample(base, np.full(n, 5, dtype=np.uint64), 3),
        "combat": _oom.lazy_combat(base, design, rng.random((2, g)),
                                   (np.arange(n) % 2).astype(np.uint32), cols,
                                   rng.random((2, g)), rng.random((2, g)) + 0.5),
    }
    for name, m in views.items():
        for v in (m, m.subset(np.array([4, 0, 4, 49]), np.array([29, 3, 0]))):
            back = pickle.loads(pickle.dumps(v))
            assert (back.path, back.key, back.shape, back.dtype) == (v.path, v.key, v.shape,
                                                                     v.dtype), name
            assert _oom.op_names(back) == _oom.op_names(v), name
            np.testing.assert_array_equal(_read_all(back), _read_all(v), err_msg=name)


def test_concat_round_trips(small_file):
    a = oom.read(small_file)
    c = oom.concat([a[:20], a[40:]])
    _same(c.X, pickle.loads(pickle.dumps(c.X)))


def test_rebuilt_in_another_process_from_another_directory(small_file, tmp_path):
    x = _pipeline(small_file).X
    blob = tmp_path / "x.pkl"
    blob.write_bytes(pickle.dumps(x))
    want = tmp_path / "want.npy"
    np.save(want, _dense(x))
    code = (
        "import pickle, sys, numpy as np, scipy.sparse as sp\n"
        "x = pickle.loads(open(sys.argv[1], 'rb').read()).to_memory()\n"
        "x = x.toarray() if sp.issparse(x) else x\n"
        "assert np.array_equal(x, np.load(sys.argv[2]))\n"
    )
    other = tmp_path / "elsewhere"
    other.mkdir()
    subprocess.run([sys.executable, "-c", code, str(blob), str(want)], check=True,
                   cwd=other, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_plan_is_small_and_names_no_data(pbmc3k_path):
    x = oom.read(pbmc3k_path).X
    assert len(pickle.dumps(x.matrix)) < 2_000  # path, key and shape only


def test_changed_or_missing_file_is_refused(make_h5ad):
    path, _ = make_h5ad(n_obs=30, n_vars=10, fmt="csr", seed=1)
    blob = pickle.dumps(oom.read(path).X)
    os.remove(path)
    with pytest.raises(FileNotFoundError):
        pickle.loads(blob)
    make_h5ad(name=path.name, n_obs=31, n_vars=10, fmt="csr", seed=1)
    with pytest.raises(ValueError, match="the file changed"):
        pickle.loads(blob)


def test_damaged_plan_is_refused(small_file):
    m = oom.read(small_file).X.matrix
    plan = m.to_plan()
    with pytest.raises(ValueError, match="checksum"):
        _oom.matrix_from_plan(plan[:-5] + b"xxxxx", m.path, m.key)
    with pytest.raises(ValueError, match="header"):
        _oom.matrix_from_plan(b"hello", m.path, m.key)


def test_matrix_in_temp_files_cannot_be_pickled(tmp_path):
    mtx = tmp_path / "m.mtx"
    mtx.write_text("%%MatrixMarket matrix coordinate integer general\n3 2 2\n1 1 4\n3 2 5\n")
    m = _oom.read_mtx(str(mtx))
    with pytest.raises(ValueError, match="temporary files"):
        pickle.dumps(m)
