"""``anndataoom run FILE -o OUT``: the whole preprocessing pipeline.

QC → filter cells/genes → normalize → log1p → highly variable genes →
scale → PCA (streamed from disk), then neighbors/UMAP/Leiden on the PCA
embedding (ours by default; ``--embedding scanpy`` runs scanpy's for
comparison) and marker genes; writes the result, PNG plots and a summary.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import anndataoom as oom
from anndataoom._progress import pass_bars
from anndataoom.cli import _plots
from anndataoom.cli._help import (
    DefaultsHelpFormatter,
    add_cellranger_options,
    cellranger_options,
    number_above,
)
from anndataoom.io import start_write_h5ad
from anndataoom.io._any import open_any

COUNT = number_above(int, 0, inclusive=True)
AT_LEAST_1 = number_above(int, 1, inclusive=True)
POSITIVE = number_above(float, 0)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser(
        "run",
        help="run QC → filter → normalize → log1p → HVG → scale → PCA → neighbors/UMAP/Leiden",
        description="The whole preprocessing pipeline, streamed from disk; writes OUT, PNG "
        "plots and prints a summary.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("file", help="an .h5ad file, or 'pbmc3k' for the bundled demo dataset")
    p.add_argument("-o", "--output", required=True, help="where to write the processed .h5ad")
    p.add_argument("--min-genes", type=COUNT, default=200, help="filter_cells(min_genes=)")
    p.add_argument("--min-cells", type=COUNT, default=3, help="filter_genes(min_cells=)")
    p.add_argument("--max-pct-mt", type=float, default=20.0, help="drop cells above this %% MT")
    p.add_argument("--target-sum", type=POSITIVE, default=1e4, help="normalize_total(target_sum=)")
    p.add_argument("--n-top-genes", type=number_above(int, 2, inclusive=True), default=2000,
                   help="highly variable genes kept")
    p.add_argument(
        "--flavor",
        default="seurat",
        choices=["seurat", "cell_ranger", "seurat_v3", "pearson_residuals"],
        help="highly_variable_genes(flavor=); seurat_v3/pearson_residuals use the counts",
    )
    p.add_argument("--batch-key", default=None, help="obs column for batch-aware HVG")
    p.add_argument("--n-comps", type=AT_LEAST_1, default=50, help="principal components")
    p.add_argument("--max-value", type=POSITIVE, default=10.0, help="scale(max_value=)")
    p.add_argument("--embedding", choices=["anndataoom", "scanpy"], default="anndataoom",
                   help="whose neighbors/UMAP/Leiden run on the PCA: ours (multithreaded, "
                   "for atlases) or scanpy's (same result layout)")
    p.add_argument("--neighbors", action=argparse.BooleanOptionalAction, default=True,
                   help="kNN graph on the PCA; --no-neighbors also skips UMAP/Leiden")
    p.add_argument("--n-neighbors", type=number_above(int, 2, inclusive=True), default=15,
                   help="neighbors(n_neighbors=)")
    p.add_argument("--umap", action=argparse.BooleanOptionalAction, default=True,
                   help="UMAP embedding")
    p.add_argument("--leiden", action=argparse.BooleanOptionalAction, default=True,
                   help="Leiden clustering")
    p.add_argument("--resolution", type=POSITIVE, default=1.0, help="leiden(resolution=)")
    p.add_argument("--markers", choices=["wilcoxon", "t-test", "t-test_overestim_var", "none"],
                   default="wilcoxon",
                   help="marker genes of the Leiden clusters (oom.tl.rank_genes_groups on raw)")
    p.add_argument("--seed", type=int, default=0, help="random_state for PCA/neighbors/UMAP/Leiden")
    p.add_argument("--plots", default=None,
                   help="directory for PNG plots (default: OUT's name + '_plots', next to OUT)")
    p.add_argument("--no-plots", dest="make_plots", action="store_false",
                   help="skip the PNGs (default: write them)")
    p.add_argument("--progress", choices=["auto", "always", "never"], default="auto",
                   help="progress bars: auto = only when stderr is a terminal")
    add_cellranger_options(p)
    p.set_defaults(func=main)


@dataclass
class Timer:
    """Wall time and peak RSS after each named step, each shown with a progress bar."""

    steps: dict[str, float] = field(default_factory=dict)
    #: Peak RSS of the process (MiB) when each step ended: the step that raised it shows.
    peaks: dict[str, float] = field(default_factory=dict)
    #: Draw bars: None = only on a terminal (see ``anndataoom._progress``).
    progress: bool | None = None

    def step(self, name: str):
        """Time the ``with`` block and draw a progress bar for it."""
        timer = self

        class _Step:
            def __enter__(self):
                self.t0 = time.perf_counter()
                self.bar = pass_bars(name, enabled=timer.progress)
                self.bar.__enter__()

            def __exit__(self, *exc):
                self.bar.__exit__(*exc)
                timer.steps[name] = timer.steps.get(name, 0.0) + time.perf_counter() - self.t0
                timer.peaks[name] = _peak_mib()
                return False

        return _Step()


def _peak_mib() -> float:
    """Return the process's peak resident memory so far; NaN where the OS keeps none (Windows)."""
    try:
        import resource
    except ImportError:
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux counts KiB, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _resolve_input(file: str) -> Path:
    if file == "pbmc3k":
        from anndataoom.datasets import pbmc3k

        return pbmc3k()
    return Path(file)


def pipeline(
    a: oom.AnnDataOOM, args: argparse.Namespace, t: Timer
) -> tuple[oom.AnnDataOOM, pd.DataFrame]:
    """Run every step on ``a`` (in place where scanpy works in place).

    Returns the result and the QC columns of all input cells (for plots).

    The counts are kept as a lazy ``layers["counts"]`` snapshot (a reference,
    not a copy), the log-normalised matrix of all kept genes as ``raw``, and
    the result holds the highly variable genes, scaled, with the PCA.
    """
    a.var["mt"] = a.var_names.str.upper().str.startswith("MT-")
    with t.step("qc"):
        oom.pp.calculate_qc_metrics(a, qc_vars=["mt"], percent_top=None, log1p=False,
                                    inplace=True)
    qc_obs = a.obs[[k for k in _plots.QC_KEYS if k in a.obs]].copy()
    with t.step("filter"):
        oom.pp.filter_cells(a, min_genes=args.min_genes)
        oom.pp.filter_genes(a, min_cells=args.min_cells)
        if args.max_pct_mt is not None:
            keep = a.obs["pct_counts_mt"].to_numpy() <= args.max_pct_mt
            if not keep.all():
                a._inplace_subset_obs(keep)
    if a.n_obs < 3 or a.n_vars < 3:
        raise ValueError(
            f"only {a.n_obs} cells × {a.n_vars} genes pass the filters; "
            "lower --min-genes/--min-cells or raise --max-pct-mt"
        )
    a.layers["counts"] = a.X
    counts_flavor = args.flavor in ("seurat_v3", "pearson_residuals")
    with t.step("normalize+log1p"):
        oom.pp.normalize_total(a, target_sum=args.target_sum)
        oom.pp.log1p(a)
    with t.step("hvg"):
        oom.pp.highly_variable_genes(
            a, n_top_genes=min(args.n_top_genes, a.n_vars), flavor=args.flavor,
            batch_key=args.batch_key, layer="counts" if counts_flavor else None,
        )
    a.raw = a
    a = a[:, a.var["highly_variable"].to_numpy()]
    with t.step("scale"):
        oom.pp.scale(a, max_value=args.max_value)
    with t.step("pca"):
        oom.pp.pca(a, n_comps=min(args.n_comps, min(a.shape) - 1), random_state=args.seed)
    return a, qc_obs


def _scanpy_neighbors(a: oom.AnnDataOOM, *, n_neighbors: int, random_state: int, **kw) -> None:
    """``sc.pp.neighbors`` with its default kNN search, as scanpy 1.11 can read it.

    Above 8,191 cells scanpy 1.11 (the last release for Python 3.11) runs
    pynndescent and calls ``getnnz`` on the result, which pynndescent ≥ 0.7
    returns as a scipy ``csr_array`` without that method; the same search with
    scanpy's settings is handed over as a ``csr_matrix``.
    """
    import scanpy as sc
    from pynndescent import PyNNDescentTransformer
    from scipy import sparse

    class CsrMatrixOut(PyNNDescentTransformer):
        def fit_transform(self, X, y=None, **fit_params):
            return sparse.csr_matrix(super().fit_transform(X, y, **fit_params))

    transformer = None
    if a.n_obs >= 8192:  # scanpy's own threshold for its exact search
        transformer = CsrMatrixOut(
            n_neighbors=n_neighbors, metric="euclidean", random_state=random_state,
            n_jobs=sc.settings.n_jobs, n_trees=min(64, 5 + round(a.n_obs**0.5 / 20.0)),
            n_iters=max(5, round(np.log2(a.n_obs))),
        )
    sc.pp.neighbors(a, n_neighbors=n_neighbors, random_state=random_state,
                    transformer=transformer, **kw)


def embed(a: oom.AnnDataOOM, args: argparse.Namespace, t: Timer) -> None:
    """Neighbors/UMAP/Leiden on ``obsm['X_pca']`` (X is never read), then markers on raw."""
    if not args.neighbors:
        return
    if args.embedding == "scanpy":
        import scanpy as sc

        neighbors, umap = _scanpy_neighbors, sc.tl.umap
        leiden = functools.partial(sc.tl.leiden, flavor="igraph", directed=False)
    else:
        neighbors, umap, leiden = oom.pp.neighbors, oom.tl.umap, oom.tl.leiden
    with t.step("neighbors"):
        neighbors(a, n_neighbors=args.n_neighbors, n_pcs=a.obsm["X_pca"].shape[1],
                  use_rep="X_pca", random_state=args.seed)
    if args.umap:
        with t.step("umap"):
            umap(a, random_state=args.seed)
    if args.leiden:
        with t.step("leiden"):
            leiden(a, resolution=args.resolution, n_iterations=2, random_state=args.seed)
        if args.markers != "none" and a.obs["leiden"].nunique() > 1:
            with t.step("markers"):
                oom.tl.rank_genes_groups(a, "leiden", method=args.markers)


def summary(a: oom.AnnDataOOM, n_in: tuple[int, int], t: Timer, out: Path,
            wall: float | None = None) -> str:
    """Format a plain-text table of what the run did (``wall``: total wall time in seconds)."""
    peak = _peak_mib()
    vr = np.asarray(a.uns["pca"]["variance_ratio"])
    n_genes = a.raw.n_vars if a.raw is not None else a.n_vars
    flavor = a.uns.get("hvg", {}).get("flavor", "")
    rows = [
        ("cells kept", f"{a.n_obs:,} of {n_in[0]:,}"),
        ("genes kept", f"{n_genes:,} of {n_in[1]:,}"),
        ("highly variable genes", f"{a.n_vars:,}" + (f" ({flavor})" if flavor else "")),
        ("PCs", f"{vr.size} (explain {vr.sum():.1%} of variance; PC1 {vr[0]:.1%})"),
    ]
    if "leiden" in a.obs:
        rows.append(("leiden clusters", f"{a.obs['leiden'].nunique()}"))
    if "rank_genes_groups" in a.uns:
        names = a.uns["rank_genes_groups"]["names"]
        method = a.uns["rank_genes_groups"]["params"]["method"]
        rows += [(f"markers of {g} ({method})" if i == 0 else f"markers of {g}",
                  ", ".join(str(x) for x in names[g][:5]))
                 for i, g in enumerate(names.dtype.names)]
    rows += [(f"time: {k}", f"{v:8.2f} s   peak so far {t.peaks[k]:7,.0f} MiB")
             for k, v in t.steps.items()]
    rows += [
        ("time: total", f"{sum(t.steps.values()) if wall is None else wall:.2f} s"),
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
    if out.suffix != ".h5ad":
        raise ValueError(f"output '{out}': run writes an .h5ad file; name it *.h5ad "
                         "(then `anndataoom convert` makes a .zarr store of it)")
    plots = Path(args.plots) if args.plots else out.parent / f"{out.stem}_plots"
    if args.make_plots and plots.exists() and not plots.is_dir():
        raise ValueError(f"plots '{plots}' is a file; --plots needs a directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    t = Timer(progress={"auto": None, "always": True, "never": False}[args.progress])
    with t.step("read"):
        a = open_any(path, **cellranger_options(args))
    print(a, flush=True)
    n_in = a.shape
    a, qc_obs = pipeline(a, args, t)
    # the matrices are final after PCA: they go to disk while the graph steps,
    # which read only obsm, use the CPU (at 1M cells: 15 GB, ~50 s of disk)
    with start_write_h5ad(a, out) as pending:
        embed(a, args, t)
        with t.step("write"):
            pending.finish(a)
    written = []
    if args.make_plots:
        with t.step("plots"):
            thresholds = {"n_genes_by_counts": (args.min_genes, None),
                          "pct_counts_mt": (None, args.max_pct_mt)}
            written = _plots.write_all(a, plots, qc_obs=qc_obs, thresholds=thresholds)
    print(summary(a, n_in, t, out, wall=time.perf_counter() - t0))
    for p in written:
        print(f"plot: {p}")
    return 0
