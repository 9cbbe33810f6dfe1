"""Argument names and defaults of ``anndataoom.pp`` match scanpy's."""

from __future__ import annotations

import inspect

import pytest
import scanpy as sc

from anndataoom import pp

MINE = ["calculate_qc_metrics", "filter_cells", "filter_genes", "highly_variable_genes", "log1p",
        "neighbors", "normalize_total", "recipe_seurat", "recipe_weinreb17", "recipe_zheng17",
        "scale", "scrublet", "scrublet_simulate_doublets"]


@pytest.mark.parametrize("name", MINE)
def test_same_parameters_as_scanpy(name):
    ours = inspect.signature(getattr(pp, name)).parameters
    theirs = inspect.signature(getattr(sc.pp, name)).parameters
    for p, par in theirs.items():
        assert p in ours, f"{name}: missing parameter {p}"
        if par.default is not inspect.Parameter.empty:
            a, b = ours[p].default, par.default
            # NaN equals NaN; "not given" sentinels compare by how they show.
            assert a == b or (a != a and b != b) or repr(a) == repr(b) == "_empty", (
                f"{name}: default of {p}"
            )
