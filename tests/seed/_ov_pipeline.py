"""omicverse 2.3.2's out-of-memory pipeline on PBMC 3k.

Shared by ``test_omicverse.py`` and usable as a timing script::

    python tests/seed/_ov_pipeline.py FILE [--backend rust|python] [--json OUT]

With ``--backend rust`` the pipeline runs on whichever ``anndataoom`` is
importable (ours, or 0.1.8 with its directory first on ``PYTHONPATH``);
``--backend python`` is omicverse's in-memory path on the same file.
Prints one line of JSON: the time of each step and small results.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time

GENES = ["CST3", "NKG7", "MS4A1", "LYZ", "CD3E", "GNLY"]
QC_TRESH = {"mito_perc": 0.2, "nUMIs": 500, "detected_genes": 250}


@contextlib.contextmanager
def _quiet(enabled: bool = True):
    if not enabled:
        yield
        return
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield


def run_pipeline(path, backend: str = "rust", *, plots: bool = True, quiet: bool = True):
    """Run read → qc → preprocess → HVG subset → scale → pca → neighbors → umap → leiden.

    Returns ``(adata, times)`` where ``adata`` is the final (HVG-subset)
    object and ``times`` maps step name → seconds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import omicverse as ov

    times: dict[str, float] = {}

    def step(name, fn):
        t = time.perf_counter()
        with _quiet(quiet):
            out = fn()
        times[name] = time.perf_counter() - t
        return out

    if backend == "rust":
        adata = step("read", lambda: ov.read(str(path), backend="rust"))
    else:
        adata = step("read", lambda: ov.read(str(path)))
    adata = step("qc", lambda: ov.pp.qc(adata, tresh=QC_TRESH, doublets=False))
    adata = step("preprocess", lambda: ov.pp.preprocess(adata, mode="shiftlog|pearson",
                                                         n_HVGs=2000))

    def subset():
        adata.raw = adata
        return adata[:, adata.var.highly_variable_features]

    adata = step("hvg_subset", subset)
    step("scale", lambda: ov.pp.scale(adata))
    step("pca", lambda: ov.pp.pca(adata, layer="scaled", n_pcs=50))
    step("neighbors", lambda: ov.pp.neighbors(adata, n_neighbors=15, n_pcs=50,
                                              use_rep="scaled|original|X_pca"))
    step("umap", lambda: ov.pp.umap(adata))
    step("leiden", lambda: ov.pp.leiden(adata, resolution=1))
    if plots:
        genes = [g for g in GENES if g in adata.raw.var_names]

        def embedding():
            ov.pl.embedding(adata, basis="X_umap", color=["leiden", genes[0]], show=False)
            plt.close("all")

        def dotplot():
            ov.pl.dotplot(adata, genes, groupby="leiden", show=False)
            plt.close("all")

        def violin():
            ov.pl.violin(adata, keys=genes[0], groupby="leiden", use_raw=True, show=False)
            plt.close("all")

        step("pl.embedding", embedding)
        step("pl.dotplot", dotplot)
        step("pl.violin", violin)
    return adata, times


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--backend", default="rust", choices=["rust", "python"])
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    adata, times = run_pipeline(args.file, args.backend, plots=not args.no_plots)
    total = time.perf_counter() - t0
    import anndataoom

    out = dict(
        backend=args.backend,
        anndataoom=getattr(anndataoom, "__version__", "?"),
        anndataoom_path=os.path.dirname(anndataoom.__file__),
        shape=list(adata.shape),
        n_leiden=int(adata.obs["leiden"].nunique()),
        times={k: round(v, 3) for k, v in times.items()},
        total=round(total, 3),
    )
    line = json.dumps(out)
    print(line)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
