"""PNG plots of a pipeline run, drawn with scanpy/matplotlib (no display)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

QC_KEYS = ("n_genes_by_counts", "total_counts", "pct_counts_mt")
#: Cells drawn as jittered points over each violin; the violin's density uses every cell.
STRIP_POINTS = 5_000
#: Above this many cells the QC scatter bins cells into hexagons (mean ``pct_counts_mt``
#: per bin): a million overlapping dots take seconds to draw and show only the outline.
SCATTER_MAX_POINTS = 100_000


def write_all(
    a,
    outdir: Path,
    *,
    qc_obs: pd.DataFrame | None = None,
    thresholds: Mapping[str, tuple[float | None, float | None]] | None = None,
) -> list[Path]:
    """Write the run's plots into ``outdir`` and return their paths.

    Parameters
    ----------
    a
        The processed object (``obs`` QC columns, ``uns['pca']``,
        ``obsm['X_umap']``, ``obs['leiden']`` are used when present).
    outdir
        Directory for the PNGs (created).
    qc_obs
        QC columns of *all* input cells (before filtering); default ``a.obs``.
    thresholds
        ``{qc column: (low, high)}`` filter limits drawn as dashed lines.

    Returns
    -------
    list of Path
        ``qc_violin.png``, ``qc_scatter.png``, ``pca_variance_ratio.png``,
        ``umap_leiden.png``, ``marker_genes.png`` (those whose data exist).
    """
    import scanpy as sc

    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    obs = a.obs if qc_obs is None else qc_obs
    thresholds = dict(thresholds or {})
    keys = [k for k in QC_KEYS if k in obs]
    if keys:
        fig, axes = plt.subplots(1, len(keys), layout="constrained", figsize=(4 * len(keys), 4))
        rng = np.random.default_rng(0)
        for ax, k in zip(np.atleast_1d(axes), keys, strict=True):
            _violin(ax, obs[k].to_numpy(dtype=np.float64), rng)
            ax.set_ylabel(k)
            for v in thresholds.get(k, (None, None)):
                if v is not None:
                    ax.axhline(v, color="crimson", ls="--", lw=1)
        fig.suptitle(f"QC of {len(obs):,} input cells (dashed: filters)")
        written.append(_save(fig, outdir / "qc_violin.png"))

    if {"total_counts", "n_genes_by_counts"} <= set(obs):
        fig, ax = plt.subplots(layout="constrained", figsize=(5.5, 4.5))
        color = obs["pct_counts_mt"] if "pct_counts_mt" in obs else None
        if len(obs) > SCATTER_MAX_POINTS:
            pts = ax.hexbin(obs["total_counts"], obs["n_genes_by_counts"], C=color, gridsize=150,
                            mincnt=1, cmap="viridis", bins=None if color is not None else "log")
            ax.set_title(f"{len(obs):,} cells in hexagonal bins")
        else:
            pts = ax.scatter(obs["total_counts"], obs["n_genes_by_counts"], c=color, s=2,
                             cmap="viridis", rasterized=True)
        ax.set_xlabel("total_counts")
        ax.set_ylabel("n_genes_by_counts")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        label = "pct_counts_mt" + (" (bin mean)" if len(obs) > SCATTER_MAX_POINTS else "")
        fig.colorbar(pts, ax=ax, label=label if color is not None else "cells per bin")
        written.append(_save(fig, outdir / "qc_scatter.png"))

    if "pca" in a.uns and "variance_ratio" in a.uns["pca"]:
        vr = np.asarray(a.uns["pca"]["variance_ratio"])
        fig, ax = plt.subplots(layout="constrained", figsize=(5.5, 4.5))
        ax.plot(np.arange(1, vr.size + 1), vr, "o-", ms=3)
        ax.set_yscale("log")
        ax.set_xlabel("PC")
        ax.set_ylabel("variance ratio")
        ax.set_title(f"PCA: {vr.size} PCs explain {vr.sum():.1%}")
        written.append(_save(fig, outdir / "pca_variance_ratio.png"))

    if "X_umap" in a.obsm:
        color = "leiden" if "leiden" in a.obs else None
        fig, ax = plt.subplots(layout="constrained", figsize=(6, 5))
        sc.pl.umap(a, color=color, ax=ax, show=False, legend_loc="on data",
                   title=f"UMAP of {a.n_obs:,} cells" + (", Leiden clusters" if color else ""))
        written.append(_save(fig, outdir / "umap_leiden.png"))

    if "rank_genes_groups" in a.uns:
        sc.pl.rank_genes_groups(a, n_genes=10, sharey=False, ncols=4, show=False)
        written.append(_save(plt.gcf(), outdir / "marker_genes.png"))
    return written


def density(values: np.ndarray, n_grid: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Return a grid and the kernel density of the finite ``values`` on it.

    A Gaussian kernel with Scott's bandwidth (scipy's ``gaussian_kde``
    default, which seaborn's violins use), evaluated on a fine histogram of
    every value: exact up to the bin width and linear in the number of cells,
    where the direct estimate costs seconds per million cells. The grid
    extends two bandwidths past the data, as seaborn's ``cut=2``.
    """
    v = values[np.isfinite(values)]
    if v.size == 0:
        return np.zeros(0), np.zeros(0)
    bw = v.std(ddof=1) * v.size ** -0.2 if v.size > 1 else 0.0
    lo, hi = v.min() - 2 * bw, v.max() + 2 * bw
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, n_grid + 1)
    counts = np.histogram(v, edges)[0].astype(np.float64)
    step = edges[1] - edges[0]
    if bw > 0:
        half = int(np.ceil(4 * bw / step))
        kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * step / bw) ** 2)
        counts = np.convolve(counts, kernel)[half:half + counts.size]
    return (edges[:-1] + edges[1:]) / 2, counts / (counts.sum() * step)


def _violin(ax, values: np.ndarray, rng: np.random.Generator) -> None:
    """Draw a violin of all finite ``values`` and a jittered strip of ``STRIP_POINTS`` of them."""
    grid, dens = density(values)
    if grid.size == 0:
        return
    v = values[np.isfinite(values)]
    width = 0.4 * dens / dens.max()
    ax.fill_betweenx(grid, -width, width, color="tab:blue", alpha=0.5, lw=0)
    shown = v if v.size <= STRIP_POINTS else rng.choice(v, STRIP_POINTS, replace=False)
    ax.scatter(rng.uniform(-0.2, 0.2, shown.size), shown, s=1, color="black", alpha=0.5,
               rasterized=True)
    ax.set_xticks([])
    ax.set_xlim(-0.5, 0.5)
    ax.set_title(f"{v.size:,} cells" + (f" ({STRIP_POINTS:,} as points)"
                                          if v.size > STRIP_POINTS else ""), fontsize=9)


def _save(fig, path: Path) -> Path:
    # our figures use constrained layout; scanpy's marker-gene figure has its own
    # gridspec, which tight_layout cannot handle (it warns): crop at save time instead
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
