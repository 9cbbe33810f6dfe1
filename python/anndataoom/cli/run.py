"""``anndataoom run FILE -o OUT``: the whole preprocessing pipeline.

QC → filter cells/genes → normalize → log1p → highly variable genes →
scale → PCA (streamed from disk), then neighbors/UMAP/Leiden with scanpy
on the small PCA embedding; writes the result, PNG plots and a summary.
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import anndataoom as oom
from anndataoom._progress import progress_bar
from anndataoom.cli import _plots


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser("run", help="run QC → normalize → HVG → scale → PCA (→ UMAP/Leiden)")
    p.add_argument("file", help="an .h5ad file, or 'pbmc3k' for the bundled demo dataset")
    p.add_argument("-o", "--output", required=True, help="where to write the processed .h5ad")
    p.add_argument("--min-genes", type=int, default=200, help="filter_cells(min_genes=)")
    p.add_argument("--min-cells", type=int, default=3, help="filter_genes(min_cells=)")
    p.add_argument("--max-pct-mt", type=float, default=20.0, help="drop cells above this %% MT")
    p.add_argument("--target-sum", type=float, default=1e4, help="normalize_total(target_sum=)")
    p.add_argument("--n-top-genes", type=int, default=2000)
    p.add_argument(
        "--flavor",
        default="seurat",
        choices=["seurat", "cell_ranger", "seurat_v3", "pearson_residuals"],
    )
    p.add_argument("--batch-key", default=None, help="obs column for batch-aware HVG")
    p.add_argument("--n-comps", type=int, default=50)
    p.add_argument("--max-value", type=float, default=10.0, help="scale(max_value=)")
    p.add_argument("--neighbors", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--umap", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--leiden", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--plots", default=None, help="directory for PNG plots (default: next to OUT)")
    p.set_defaults(func=main)


@dataclass
class Timer:
    """Wall time per named step."""

    steps: dict[str, float] = field(default_factory=dict)

    def step(self, name: str):
        """Time the ``with`` block and draw a progress bar for it."""
        timer = self

        class _Step:
            def __enter__(self):
                self.t0 = time.perf_counter()
                self.bar = progress_bar(name)
                self.bar.__enter__()

            def __exit__(self, *exc):
                self.bar.__exit__(*exc)
                timer.steps[name] = time.perf_counter() - self.t0
                return False

        return _Step()


def _resolve_input(file: str) -> Path:
    if file == "pbmc3k":
        from anndataoom.datasets import pbmc3k

        return pbmc3k()
    return Path(file)


def pipeline(a: oom.AnnDataOOM, args: argparse.Namespace, t: Timer) -> oom.AnnDataOOM:
    """Run every step in place on ``a`` and return the HVG-subset result."""
    a.var["mt"] = a.var_names.str.upper().str.startswith("MT-")
    with t.step("qc"):
        oom.pp.calculate_qc_metrics(a, qc_vars=["mt"], percent_top=None, log1p=False)
    with t.step("filter"):
        oom.pp.filter_cells(a, min_genes=args.min_genes)
        oom.pp.filter_genes(a, min_cells=args.min_cells)
        if args.max_pct_mt is not None:
            a._inplace_subset_obs(a.obs["pct_counts_mt"].to_numpy() <= args.max_pct_mt)
    with t.step("normalize+log1p"):
        oom.pp.normalize_total(a, target_sum=args.target_sum)
        oom.pp.log1p(a)
    with t.step("hvg"):
        oom.pp.highly_variable_genes(
            a, n_top_genes=args.n_top_genes, flavor=args.flavor, batch_key=args.batch_key
        )
    a.raw = a
    a = a[:, a.var["highly_variable"].to_numpy()]
    with t.step("scale"):
        oom.pp.scale(a, max_value=args.max_value)
    with t.step("pca"):
        oom.pp.pca(a, n_comps=min(args.n_comps, min(a.shape) - 1))
    return a


def embed(a: oom.AnnDataOOM, args: argparse.Namespace, t: Timer) -> None:
    """Neighbors/UMAP/Leiden with scanpy on ``obsm['X_pca']``."""
    import scanpy as sc

    if not args.neighbors:
        return
    with t.step("neighbors"):
        sc.pp.neighbors(a, n_pcs=a.obsm["X_pca"].shape[1], random_state=0)
    if args.umap:
        with t.step("umap"):
            sc.tl.umap(a, random_state=0)
    if args.leiden:
        with t.step("leiden"):
            sc.tl.leiden(a, flavor="igraph", n_iterations=2, directed=False, random_state=0)


def summary(a: oom.AnnDataOOM, n_in: tuple[int, int], t: Timer, out: Path) -> str:
    """A plain-text table of what the run did."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    vr = np.asarray(a.uns["pca"]["variance_ratio"])
    rows = [
        ("cells kept", f"{a.n_obs:,} of {n_in[0]:,}"),
        ("genes kept", f"{a.raw.n_vars:,} of {n_in[1]:,}"),
        ("highly variable genes", f"{a.n_vars:,}"),
        ("PCs", f"{vr.size} (explain {vr.sum():.1%} of variance; PC1 {vr[0]:.1%})"),
    ]
    if "leiden" in a.obs:
        rows.append(("leiden clusters", f"{a.obs['leiden'].nunique()}"))
    rows += [(f"time: {k}", f"{v:.2f} s") for k, v in t.steps.items()]
    rows += [
        ("time: total", f"{sum(t.steps.values()):.2f} s"),
        ("peak memory (RSS)", f"{peak:,.0f} MiB"),
        ("output", str(out)),
    ]
    width = max(len(k) for k, _ in rows)
    line = "─" * (width + 40)
    body = "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)
    return f"{line}\n{body}\n{line}"


def main(args: argparse.Namespace) -> int:
    """Run the pipeline on ``args.file`` and write ``args.output``."""
    path = _resolve_input(args.file)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    plots = Path(args.plots) if args.plots else out.parent / f"{out.stem}_plots"
    t = Timer()
    with t.step("read"):
        a = oom.read(path)
    print(a)
    n_in = a.shape
    a = pipeline(a, args, t)
    embed(a, args, t)
    with t.step("write"):
        a.write_h5ad(out)
    written = _plots.write_all(a, plots)
    print(summary(a, n_in, t, out))
    for p in written:
        print(f"plot: {p}")
    return 0
