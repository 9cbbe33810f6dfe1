"""Each call has its own cancel flag and progress: calls made at once on two
threads do not stop or reset each other."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import anndataoom as oom
from anndataoom import _oom


@pytest.fixture
def adatas(make_h5ad):
    path, mem = make_h5ad(n_obs=3000, n_vars=200, density=0.2, seed=5)
    # the Rust matrix itself: BackedArray caches its sums
    return oom.read(path).X.matrix, mem


def test_a_cancelled_context_stops_its_calls_only(adatas):
    a, mem = adatas
    ctx = _oom.CallContext()
    ctx.cancel()
    outcome: dict[str, object] = {}
    start = threading.Barrier(2)

    def cancelled() -> None:
        start.wait()
        with ctx:
            try:
                a.axis_sums()
            except BaseException as e:  # noqa: BLE001 - the error is what we test
                outcome["cancelled"] = e

    def running() -> None:
        start.wait()
        outcome["sums"] = a.axis_sums()[2]

    threads = [threading.Thread(target=f) for f in (cancelled, running)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(outcome["cancelled"], KeyboardInterrupt)
    np.testing.assert_allclose(outcome["sums"],
                               np.asarray(mem.X.sum(axis=0)).ravel(), rtol=1e-6)
    # the context stays cancelled; a call outside it runs
    with ctx, pytest.raises(KeyboardInterrupt):
        a.axis_sums()
    assert len(a.axis_sums()[0]) == mem.n_obs


def test_progress_counts_the_calls_of_its_context(adatas):
    a, mem = adatas
    n = mem.n_obs
    with _oom.CallContext() as ctx:
        a.axis_sums()
        after_one = ctx.progress()
        a.axis_sums()
    assert after_one == (n, n)
    assert ctx.progress() == (2 * n, 2 * n)
    a.axis_sums()  # outside: not counted here
    assert ctx.progress() == (2 * n, 2 * n)


def test_runs_split_a_pass_into_the_states_it_merges(adatas):
    """A pass folds ``runs`` runs of rows: one run over all rows is the sequential sum."""
    a, mem = adatas
    assert _oom.CallContext().runs >= 1
    with _oom.CallContext(runs=1) as ctx:
        assert ctx.runs == 1
        sums = a.axis_sums()[2]
    x = mem.X.tocsr()
    sequential = np.zeros(x.shape[1])
    for r in range(x.shape[0]):  # row after row, in f64, as one run adds them
        lo, hi = x.indptr[r], x.indptr[r + 1]
        np.add.at(sequential, x.indices[lo:hi], x.data[lo:hi].astype(np.float64))
    np.testing.assert_array_equal(sums, sequential)
    runs = a.runs(3)
    assert len(runs) == 3 and runs[0][0] == 0 and runs[-1][1] == mem.n_obs
    assert all(r[1] == s[0] for r, s in zip(runs[:-1], runs[1:], strict=True))
    with pytest.raises(ValueError, match="at least 1"):
        _oom.CallContext(runs=0)
    with pytest.raises(OverflowError):
        _oom.CallContext(runs=-2)
