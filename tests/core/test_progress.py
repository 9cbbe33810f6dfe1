"""Progress bars of library steps: shown when forced, silent when not, and the outer block decides."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import anndataoom as oom
from anndataoom import _oom
from anndataoom._progress import pass_bars


@pytest.fixture
def counts(make_h5ad):
    path, _ = make_h5ad(n_obs=400, n_vars=600, density=0.1)
    return path


def _pipeline(path):
    a = oom.read(path)
    oom.pp.calculate_qc_metrics(a, inplace=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oom.pp.highly_variable_genes(a, flavor="pearson_residuals", n_top_genes=20)
    oom.pp.pca(a, n_comps=5)


def test_library_steps_draw_bars_when_forced(counts, monkeypatch, capsys):
    monkeypatch.setenv("ANNDATAOOM_PROGRESS", "1")
    _pipeline(counts)
    err = capsys.readouterr().err
    for step in ("calculate_qc_metrics", "highly_variable_genes", "pca"):
        assert f"{step}:" in err or f"{step} [pass" in err, step


def test_pearson_residual_passes_report_their_rows(counts):
    """The two residual passes count their rows (a minute at 200k cells had shown nothing)."""
    m = oom.read(counts).X.matrix
    n, k = m.shape
    row_sum = np.ones(n)
    with _oom.CallContext() as ctx:
        _oom.residual_variances(m, row_sum, np.ones((1, k)), np.array([float(n)]), 100.0,
                                float(np.sqrt(n)), None, False)
        assert ctx.progress() == (2 * n, 2 * n)


def test_no_bars_unless_asked(counts, monkeypatch, capsys):
    monkeypatch.setenv("ANNDATAOOM_PROGRESS", "0")
    _pipeline(counts)
    assert capsys.readouterr().err == ""


def test_an_outer_block_decides_for_the_steps_inside(counts, monkeypatch, capsys):
    """The CLI's ``--progress never`` wraps each step in a disabled block: steps stay silent."""
    monkeypatch.setenv("ANNDATAOOM_PROGRESS", "1")
    with pass_bars("outer", enabled=False):
        _pipeline(counts)
    assert capsys.readouterr().err == ""
    with pass_bars("outer", enabled=True):
        oom.pp.pca(oom.read(counts), n_comps=5)
    err = capsys.readouterr().err
    assert "outer" in err and "pca" not in err
