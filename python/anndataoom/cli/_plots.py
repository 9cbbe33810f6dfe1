"""PNG plots of a pipeline run, drawn with scanpy/matplotlib (no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def write_all(a, outdir: Path) -> list[Path]:
    """QC violins, QC scatter, PCA variance ratio and UMAP by Leiden."""
    import scanpy as sc

    outdir.mkdir(parents=True, exist_ok=True)
    written = []

    keys = [k for k in ("n_genes_by_counts", "total_counts", "pct_counts_mt") if k in a.obs]
    if keys:
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 4))
        for ax, k in zip(np.atleast_1d(axes), keys):
            sc.pl.violin(a, k, ax=ax, show=False, jitter=0.4, size=1)
        written.append(_save(fig, outdir / "qc_violin.png"))

    if {"total_counts", "n_genes_by_counts"} <= set(a.obs):
        fig, ax = plt.subplots(figsize=(5, 4))
        color = a.obs["pct_counts_mt"] if "pct_counts_mt" in a.obs else None
        sc_ = ax.scatter(a.obs["total_counts"], a.obs["n_genes_by_counts"], c=color, s=2)
        ax.set_xlabel("total_counts")
        ax.set_ylabel("n_genes_by_counts")
        if color is not None:
            fig.colorbar(sc_, ax=ax, label="pct_counts_mt")
        written.append(_save(fig, outdir / "qc_scatter.png"))

    if "pca" in a.uns:
        vr = np.asarray(a.uns["pca"]["variance_ratio"])
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(np.arange(1, vr.size + 1), vr, "o-", ms=3)
        ax.set_yscale("log")
        ax.set_xlabel("PC")
        ax.set_ylabel("variance ratio")
        written.append(_save(fig, outdir / "pca_variance_ratio.png"))

    if "X_umap" in a.obsm:
        color = "leiden" if "leiden" in a.obs else None
        fig, ax = plt.subplots(figsize=(6, 5))
        sc.pl.umap(a, color=color, ax=ax, show=False, legend_loc="on data")
        written.append(_save(fig, outdir / "umap_leiden.png"))
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
