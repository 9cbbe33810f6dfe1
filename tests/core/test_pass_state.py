"""Pass states: what a pass kernel returns for the rows it read.

States of consecutive row ranges combine, in row order, into the state one
pass makes when it folds the same runs — bit for bit, which is what
``oom.distributed`` relies on (one worker task per run) — pickle as checked
bytes, and refuse to be mixed.
"""

from __future__ import annotations

import pickle

import anndata as ad
import numpy as np
import pytest

from anndataoom import _oom

N_OBS, N_VARS, RUNS = 300, 40, 3
RNG = np.random.default_rng(5)
GROUPS = (np.arange(N_OBS) % 3).astype(np.uint32)
THRESHOLD = RNG.uniform(0, 3, N_OBS)
MASKS = np.ascontiguousarray(RNG.random((2, N_VARS)) < 0.3)
COMPONENTS = RNG.standard_normal((N_VARS, 4))
MEAN = RNG.standard_normal(N_VARS)
DESIGN = np.column_stack([np.ones(N_OBS), RNG.standard_normal(N_OBS)])

# Each pass kernel as oom.distributed calls it: (matrix of some rows, those rows) -> state.
KERNELS = {
    "qc_metrics": lambda m, rows: _oom.qc_metrics(m, [1, 5, 50], MASKS),
    "positive_counts": lambda m, rows: _oom.positive_counts(m),
    "count_above": lambda m, rows: _oom.count_above(m, THRESHOLD[rows]),
    "moments": lambda m, rows: _oom.moments(m, GROUPS[rows], 3, True, None, None, True),
    "gram": lambda m, rows: _oom.gram_state(m, "float32"),
    "rows": lambda m, rows: _oom.pca_project(m, COMPONENTS, MEAN, "float32"),
    "regress_stats": lambda m, rows: _oom.regress_stats(m, DESIGN[rows]),
}


@pytest.fixture
def matrix(make_h5ad):
    path, _ = make_h5ad(n_obs=N_OBS, n_vars=N_VARS, density=0.3, seed=11)
    return _oom.open(str(path), "X"), ad.read_h5ad(path).X.toarray().astype(np.float64)


def _same(a, b) -> None:
    """Equal to the bit: arrays, tuples of them, dicts of them, scalars."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        a, b = np.atleast_1d(a), np.atleast_1d(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


def _per_run(m, kernel):
    """The states of ``m``'s runs, each folded alone (what the workers send back)."""
    with _oom.CallContext(runs=1):
        return [kernel(m.subset(np.arange(a, b, dtype=np.int64), None), slice(a, b))
                for a, b in m.runs(RUNS)]


@pytest.mark.parametrize("kind", KERNELS)
def test_combined_runs_are_the_one_pass_state(matrix, kind):
    m, _ = matrix
    kernel = KERNELS[kind]
    with _oom.CallContext(runs=RUNS):
        whole = kernel(m, slice(None))
    parts = _per_run(m, kernel)
    assert len(parts) == RUNS
    combined = _oom.PassState.combine(parts)
    assert combined.kind == whole.kind == kind
    assert combined.nrows == whole.nrows
    _same(combined.finalize(), whole.finalize())
    # and the parts are really different rows: one alone is not the whole
    assert parts[0].nrows < whole.nrows or kind == "count_above"


@pytest.mark.parametrize("kind", KERNELS)
def test_states_pickle_as_checked_bytes(matrix, kind):
    m, _ = matrix
    state = KERNELS[kind](m, slice(None))
    back = pickle.loads(pickle.dumps(state))
    assert back.kind == kind
    _same(back.finalize(), state.finalize())
    raw = state.to_bytes()
    with pytest.raises(ValueError, match="checksum"):
        _oom.pass_state_from_bytes(raw[:-5] + bytes([raw[-5] ^ 1]) + raw[-4:])
    with pytest.raises(ValueError, match="checksum|header"):
        _oom.pass_state_from_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="header"):
        _oom.pass_state_from_bytes(m.to_plan())  # a plan is not a pass state
    with pytest.raises(ValueError, match="format 9"):
        _oom.pass_state_from_bytes(raw[:8] + (9).to_bytes(2, "little") + raw[10:])


def test_moments_are_the_mean_and_variance(matrix):
    m, x = matrix
    got = _oom.PassState.combine(_per_run(m, lambda m, rows: _oom.moments(m, GROUPS[rows],
                                                                         3))).finalize()
    for g in range(3):
        np.testing.assert_allclose(got["mean"][g], x[GROUPS == g].mean(0), rtol=1e-9)
        np.testing.assert_allclose(got["var"][g], x[GROUPS == g].var(0, ddof=1), rtol=1e-9,
                                   atol=1e-12)


def test_qc_first_entries_are_numbered_in_the_whole_matrix(matrix):
    """Each column's first non-zeros keep their row numbers across combined runs."""
    m, x = matrix
    *_, col_nnz, _, rare_rows, rare_vals = _oom.PassState.combine(
        _per_run(m, KERNELS["qc_metrics"])).finalize()
    keep = rare_rows.shape[1]
    for c in range(N_VARS):
        rows = np.flatnonzero(x[:, c])[:keep]
        k = min(col_nnz[c], keep)
        np.testing.assert_array_equal(rare_rows[c, :k], rows)
        np.testing.assert_array_equal(rare_vals[c, :k], x[rows, c])


def test_states_refuse_to_mix(matrix):
    m, _ = matrix
    narrow = m.subset(None, np.arange(5, dtype=np.int64))
    with pytest.raises(ValueError, match="no pass states"):
        _oom.PassState.combine([])
    with pytest.raises(ValueError, match="cannot combine a moments state with a qc_metrics"):
        _oom.PassState.combine([_oom.moments(m), KERNELS["qc_metrics"](m, None)])
    with pytest.raises(ValueError, match="cannot combine"):
        _oom.PassState.combine([_oom.moments(m), _oom.moments(narrow)])
    with pytest.raises(ValueError, match="positive_counts states of 40 and 5 columns"):
        _oom.PassState.combine([_oom.positive_counts(m), _oom.positive_counts(narrow)])
    with pytest.raises(ValueError, match="top ranks"):
        _oom.PassState.combine([_oom.qc_metrics(m, [1], MASKS), _oom.qc_metrics(m, [2, 3],
                                                                                 MASKS)])
    with pytest.raises(ValueError, match="designs 2 and 3 wide"):
        _oom.PassState.combine([_oom.regress_stats(m, DESIGN), _oom.regress_stats(
            m, codes=GROUPS, ngroups=3)])
    f32 = _oom.pca_project(m, COMPONENTS, None, "float32")
    with pytest.raises(ValueError, match="float32 and float64"):
        _oom.PassState.combine([f32, _oom.pca_project(m, COMPONENTS, None, "float64")])
