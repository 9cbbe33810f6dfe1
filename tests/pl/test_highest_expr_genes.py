"""``oom.pl.highest_expr_genes``: the same genes and boxes as scanpy's plot on PBMC 3k."""

from __future__ import annotations

import anndata as ad
import matplotlib
import numpy as np
import pytest
import scanpy as sc

import anndataoom as oom

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# seaborn 0.13 passes matplotlib's deprecated `vert` (not ours to fix)
pytestmark = pytest.mark.filterwarnings("ignore:vert. bool was deprecated")


def _labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def _marks(ax) -> np.ndarray:
    """x of each box's median and whisker caps (the vertical 2-point lines)."""
    return np.array([ln.get_xdata()[0] for ln in ax.lines
                     if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == ln.get_xdata()[1]])


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_same_genes_as_scanpy_on_pbmc3k(pbmc3k_path, tmp_path):
    lazy, mem = oom.read(pbmc3k_path), ad.read_h5ad(pbmc3k_path)
    theirs = sc.pl.highest_expr_genes(mem, n_top=20, show=False)
    ours = oom.pl.highest_expr_genes(lazy, n_top=20, show=False)
    assert len(_labels(ours)) == 20
    assert _labels(ours) == _labels(theirs)
    assert ours.get_xlabel() == "% of total counts"
    assert len(_marks(ours)) == len(_marks(theirs)) >= 20
    np.testing.assert_allclose(_marks(ours), _marks(theirs), rtol=1e-5)
    assert isinstance(lazy.X, oom.BackedArray) and not lazy.X.transforms
    plt.close("all")
    lazy.var["symbol"] = [f"sym_{g}" for g in lazy.var_names]
    ax = oom.pl.highest_expr_genes(lazy, n_top=5, gene_symbols="symbol", log=True, show=False)
    assert _labels(ax) == [f"sym_{g}" for g in _labels(theirs)[:5]]
    assert ax.get_xscale() == "log"
    plt.close("all")
    lazy.close()


def test_in_memory_goes_to_scanpy(make_h5ad):
    _, mem = make_h5ad(n_obs=50, n_vars=30, density=0.4, seed=2)
    ax = oom.pl.highest_expr_genes(mem, n_top=4, show=False)
    assert len(_labels(ax)) == 4
    plt.close("all")


def test_bad_layer(make_h5ad):
    path, _ = make_h5ad(n_obs=20, n_vars=10, seed=2)
    lazy = oom.read(path)
    with pytest.raises(KeyError):
        oom.pl.highest_expr_genes(lazy, layer="nope", show=False)
    lazy.close()
