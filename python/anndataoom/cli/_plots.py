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
    import anndata
    import scanpy as sc

    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    obs = a.obs if qc_obs is None else qc_obs
    thresholds = dict(thresholds or {})
    keys = [k for k in QC_KEYS if k in obs]
    if keys:
        qc = anndata.AnnData(obs=obs[keys].copy())
        fig, axes = plt.subplots(1, len(keys), layout="constrained", figsize=(4 * len(keys), 4))
        for ax, k in zip(np.atleast_1d(axes), keys, strict=True):
            sc.pl.violin(qc, k, ax=ax, show=False, jitter=0.4, size=1)
            ax.set_ylabel(k)
            ax.set_xlabel("")
            for v in thresholds.get(k, (None, None)):
                if v is not None:
                    ax.axhline(v, color="crimson", ls="--", lw=1)
        fig.suptitle(f"QC of {len(obs):,} input cells (dashed: filters)")
        written.append(_save(fig, outdir / "qc_violin.png"))

    if {"total_counts", "n_genes_by_counts"} <= set(obs):
        fig, ax = plt.subplots(layout="constrained", figsize=(5.5, 4.5))
        color = obs["pct_counts_mt"] if "pct_counts_mt" in obs else None
        pts = ax.scatter(obs["total_counts"], obs["n_genes_by_counts"], c=color, s=2,
                         cmap="viridis", rasterized=True)
        ax.set_xlabel("total_counts")
        ax.set_ylabel("n_genes_by_counts")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        if color is not None:
            fig.colorbar(pts, ax=ax, label="pct_counts_mt")
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


def _save(fig, path: Path) -> Path:
    # our figures use constrained layout; scanpy's marker-gene figure has its own
    # gridspec, which tight_layout cannot handle (it warns): crop at save time instead
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
