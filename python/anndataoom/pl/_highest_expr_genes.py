"""``highest_expr_genes``: scanpy's boxplot of the top genes, fed by streamed passes.

scanpy normalises every cell to 100 in memory and slices the top genes
from a dense copy.  Here the per-cell size factors (one pass) and the mean
percentage of every gene (one pass of the lazy normalised matrix) are
streamed, and only the ``n_top`` chosen columns are read to draw the same
seaborn boxplot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["highest_expr_genes"]


def _top_percentages(adata, n_top: int, layer: str | None):
    """``(top_idx, cells × n_top percentages)`` as scanpy computes them, streamed."""
    from anndataoom.pp import normalize_total

    x = normalize_total(adata, target_sum=100, layer=layer, inplace=False)["X"]
    mean_percent = np.asarray(x.mean(axis=0))
    top_idx = np.argsort(mean_percent)[::-1][:n_top]
    counts = x[:, top_idx].to_memory()
    counts = counts.toarray() if hasattr(counts, "toarray") else np.asarray(counts)
    return top_idx, counts


def highest_expr_genes(adata, n_top: int = 30, *, layer: str | None = None,
                       gene_symbols: str | None = None, log: bool = False,
                       show: bool | None = None, save: str | bool | None = None, ax=None,
                       **kwds):
    """Fraction of counts assigned to each gene over all cells (scanpy's ``pl.highest_expr_genes``).

    Draws, for the ``n_top`` genes with the highest mean share of each
    cell's counts, a boxplot of that share over cells, exactly as scanpy.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` (X or the layer is streamed;
        only the top genes' columns are loaded) or an in-memory AnnData
        (handed over to scanpy).
    n_top
        Number of genes to show.
    layer
        Use ``adata.layers[layer]`` instead of X.
    gene_symbols
        Column of ``var`` to label the genes with instead of ``var_names``.
    log
        Logarithmic x axis.
    show, save, ax
        As scanpy: show the figure, save it, or draw into ``ax``.
    **kwds
        Passed to :func:`seaborn.boxplot`.

    Returns
    -------
    The ``Axes`` when ``show`` is ``False``, else ``None``.
    """
    x = adata.X if layer is None else adata.layers[layer]
    if not hasattr(x, "matrix"):
        import scanpy as sc

        return sc.pl.highest_expr_genes(adata, n_top, layer=layer, gene_symbols=gene_symbols,
                                        log=log, show=show, save=save, ax=ax, **kwds)
    import matplotlib.pyplot as plt
    import seaborn as sns
    from scanpy import settings
    from scanpy.plotting._utils import savefig_or_show

    top_idx, counts = _top_percentages(adata, n_top, layer)
    columns = (adata.var_names[top_idx] if gene_symbols is None
               else adata.var[gene_symbols].iloc[top_idx].astype("string"))
    frame = pd.DataFrame(counts, index=adata.obs_names, columns=columns)
    if not ax:
        # scanpy's tall figure: 0.2 inch per gene
        _, ax = plt.subplots(figsize=(5, n_top * 0.2 + 1.5))
    sns.boxplot(data=frame, orient="h", ax=ax, fliersize=1, **kwds)
    ax.set_xlabel("% of total counts")
    if log:
        ax.set_xscale("log")
    show = settings.autoshow if show is None else show
    savefig_or_show("highest_expr_genes", show=show, save=save)
    return None if show else ax
