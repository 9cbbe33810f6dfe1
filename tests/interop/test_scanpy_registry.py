"""Every scanpy function in the guard's registry: refused ones fail first, working ones work.

The registry (``anndataoom._core._guard.SCANPY``) is also the README table;
the last test keeps the two equal.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import anndataoom as oom
from anndataoom._core._guard import SCANPY, _available, _kind, what_works_table

#: how to call each registered scanpy function on a small object
CALLS = {
    "pp.calculate_qc_metrics": lambda a: sc.pp.calculate_qc_metrics(a),
    "pp.filter_cells": lambda a: sc.pp.filter_cells(a, min_genes=1),
    "pp.filter_genes": lambda a: sc.pp.filter_genes(a, min_cells=1),
    "pp.normalize_total": lambda a: sc.pp.normalize_total(a),
    "pp.log1p": lambda a: sc.pp.log1p(a),
    "pp.sqrt": lambda a: sc.pp.sqrt(a),
    "pp.highly_variable_genes": lambda a: sc.pp.highly_variable_genes(a, flavor="seurat_v3"),
    "pp.scale": lambda a: sc.pp.scale(a),
    "pp.pca": lambda a: sc.pp.pca(a, n_comps=5),
    "pp.regress_out": lambda a: sc.pp.regress_out(a, ["n"]),
    "pp.combat": lambda a: sc.pp.combat(a, key="g"),
    "pp.downsample_counts": lambda a: sc.pp.downsample_counts(a, counts_per_cell=5),
    "pp.normalize_per_cell": lambda a: sc.pp.normalize_per_cell(a),
    "pp.scrublet": lambda a: sc.pp.scrublet(a, threshold=0.2),
    "pp.scrublet_simulate_doublets": lambda a: sc.pp.scrublet_simulate_doublets(a),
    "experimental.pp.highly_variable_genes": lambda a: sc.experimental.pp.highly_variable_genes(
        a, flavor="pearson_residuals", n_top_genes=10),
    "tl.rank_genes_groups": lambda a: sc.tl.rank_genes_groups(a, "g"),
    "tl.filter_rank_genes_groups": lambda a: sc.tl.filter_rank_genes_groups(a, key="ranked"),
    "get.aggregate": lambda a: sc.get.aggregate(a, by="g", func="sum"),
    "pl.highest_expr_genes": lambda a: sc.pl.highest_expr_genes(a, n_top=5, show=False),
    "experimental.pp.normalize_pearson_residuals":
        lambda a: sc.experimental.pp.normalize_pearson_residuals(a),
    "experimental.pp.normalize_pearson_residuals_pca":
        lambda a: sc.experimental.pp.normalize_pearson_residuals_pca(a, n_comps=5),
    "experimental.pp.recipe_pearson_residuals":
        lambda a: sc.experimental.pp.recipe_pearson_residuals(a, n_top_genes=10, n_comps=5),
    "pp.filter_genes_dispersion": lambda a: sc.pp.filter_genes_dispersion(a),
    "pp.recipe_zheng17": lambda a: sc.pp.recipe_zheng17(a, n_top_genes=10),
    "pp.recipe_seurat": lambda a: sc.pp.recipe_seurat(a),
    "pp.recipe_weinreb17": lambda a: sc.pp.recipe_weinreb17(a),
    "metrics.morans_i": lambda a: sc.metrics.morans_i(a),
    "metrics.gearys_c": lambda a: sc.metrics.gearys_c(a, layer="counts"),
    "pp.neighbors": lambda a: sc.pp.neighbors(a, n_neighbors=5),
    "tl.umap": lambda a: (sc.pp.neighbors(a, n_neighbors=5), sc.tl.umap(a, maxiter=5)),
    "tl.leiden": lambda a: (sc.pp.neighbors(a, n_neighbors=5),
                            sc.tl.leiden(a, flavor="igraph", n_iterations=2, directed=False)),
    "pl.umap": lambda a: (a.obsm.__setitem__("X_umap", a.obsm["X_pca"][:, :2]),
                          sc.pl.umap(a, color=["g", a.var_names[0]], show=False)),
    "pl.violin": lambda a: sc.pl.violin(a, ["n", a.var_names[1]], show=False),
}


def _state(a) -> tuple:
    return (list(a.obs.columns), list(a.var.columns), sorted(a.uns), sorted(a.obsm),
            sorted(a.varm), sorted(a.layers), a.shape, type(a.X).__name__)


@pytest.fixture
def lazy(make_h5ad):
    path, _ = make_h5ad(n_obs=90, n_vars=60, density=0.3, seed=5)
    a = oom.read(path)
    a.obs["g"] = pd.Categorical(np.arange(a.n_obs) % 3).astype(str)
    a.obs["n"] = np.arange(a.n_obs, dtype=float)
    a.obsm["X_pca"] = np.random.default_rng(0).normal(size=(a.n_obs, 10)).astype(np.float32)
    oom.tl.rank_genes_groups(a, "g", key_added="ranked")  # without pts: filtering reads X
    a.layers["counts"] = a.X
    sc.pp.neighbors(a, n_neighbors=5)  # the graph the metrics read
    return a


def test_every_entry_is_exercised():
    assert set(CALLS) == {e.name for e in SCANPY}
    # functions are recognised on the stack by name: one entry per scanpy function
    assert len({(_kind(e.section), e.function) for e in SCANPY}) == len(SCANPY)


@pytest.mark.parametrize("entry", [e for e in SCANPY if not e.works], ids=lambda e: e.name)
def test_refused_before_changing_the_object(lazy, entry):
    before = _state(lazy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(oom.InMemoryRequiredError) as e:
            CALLS[entry.name](lazy)
    assert _state(lazy) == before  # nothing written: no half-filled uns, X still lazy
    msg = str(e.value)
    assert f"scanpy.{entry.name}" in msg and "to_memory" in msg
    if entry.alternative and _available(entry.alternative):
        assert entry.alternative in msg
    else:
        assert "no out-of-core version of it yet" in msg


def test_a_refused_step_is_named_with_the_users_call(lazy):
    """neighbors without X_pca runs scanpy's pca: the message says so, and what to run first."""
    del lazy.obsm["X_pca"]
    with pytest.raises(oom.InMemoryRequiredError) as e, \
            pytest.warns(UserWarning, match="Falling back to preprocessing with `sc.pp.pca`"):
        sc.pp.neighbors(lazy)
    msg = str(e.value)
    assert msg.startswith("scanpy.pp.neighbors runs scanpy.pp.pca, which needs X in memory")
    assert "Run oom.pp.pca(adata) first" in msg
    oom.pp.pca(lazy, n_comps=5)
    sc.pp.neighbors(lazy, n_neighbors=5)  # the advice works
    assert "connectivities" in lazy.obsp


def test_a_lazy_layer_or_raw_is_refused_as_x_is(lazy):
    """scanpy's metrics transposed the lazy matrix and failed with a bare TypeError."""
    lazy.raw = lazy
    for kw in ({"layer": "counts"}, {"use_raw": True}):
        with pytest.raises(oom.InMemoryRequiredError,
                           match=r"scanpy.metrics.morans_i needs X in memory: reading adata"):
            sc.metrics.morans_i(lazy, **kw)
    g = np.asarray(lazy.obs["n"])[None, :]
    np.testing.assert_allclose(sc.metrics.morans_i(lazy, vals=g),
                               sc.metrics.morans_i(lazy.obsp["connectivities"], g))


def test_scanpy_runs_when_every_matrix_is_in_memory(lazy):
    """An AnnDataOOM whose X is loaded: scanpy (and oom.pp handing over to it) writes uns."""
    mem = lazy.to_memory()
    del lazy.layers["counts"]
    lazy.X = lazy.X.to_memory()
    for a in (lazy, mem):
        oom.pp.log1p(a)
        sc.tl.rank_genes_groups(a, "g")
    assert lazy.uns["log1p"] == mem.uns["log1p"]
    np.testing.assert_array_equal(lazy.uns["rank_genes_groups"]["names"],
                                  mem.uns["rank_genes_groups"]["names"])


def test_rank_genes_groups_leaves_no_half_written_uns(lazy):
    with pytest.raises(oom.InMemoryRequiredError, match="oom.tl.rank_genes_groups"):
        sc.tl.rank_genes_groups(lazy, "g")
    assert "rank_genes_groups" not in lazy.uns
    oom.tl.rank_genes_groups(lazy, "g")  # the named alternative works on the same object
    assert not sc.get.rank_genes_groups_df(lazy, group="0").empty


@pytest.mark.parametrize("entry", [e for e in SCANPY if e.works], ids=lambda e: e.name)
def test_working_entries_run_and_keep_x_lazy(lazy, entry):
    import matplotlib

    matplotlib.use("Agg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        CALLS[entry.name](lazy)
    assert isinstance(lazy.X, oom.BackedArray)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_readme_table_is_the_registry():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    m = re.search(r"<!-- what-works:start -->\n(.*?)\n<!-- what-works:end -->", readme, re.S)
    assert m, "README lacks the what-works markers"
    assert m.group(1) == what_works_table()
