r"""UMAP of one kNN graph: ours (``oom.tl.umap``) vs scanpy's ``sc.tl.umap``.

Input: an N × d ``X_pca`` (``.npy``, e.g. the lead's
``/work/data/mixed_100k_pca.npy``) and its connectivities (``.npz`` CSR from
``sc.pp.neighbors``/``oom.pp.neighbors``; built here with
``sc.pp.neighbors(n_neighbors=15)`` when missing and cached in the temp
directory). Each contender runs in its own process on the same graph (wall,
CPU, true peak RSS of the process tree by ``bench/_proc.py``; scanpy under
``--scanpy-timeout``), then both embeddings are scored by neighbour
preservation: the mean fraction of each of ``--sample`` random cells' 15
nearest neighbours in X_pca that stay among its 15 nearest in the
embedding. Results go to ``bench/results/umap_<name>.json``. (Not named
``umap.py``: the script's folder comes first on ``sys.path`` and would
shadow the ``umap`` package scanpy imports.)

Usage::

    python bench/umap_layout.py --pca /work/data/mixed_100k_pca.npy
    python bench/umap_layout.py --pca /work/data/mixed_1m_pca.npy \
        --graph /work/data/mixed_1m_graph.npz --contenders ours
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _proc import run_measured  # noqa: E402
from _report import fmt_bytes, machine  # noqa: E402

RESULTS = HERE / "results"


def _adata(pca: Path, graph: Path):
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp

    x = np.load(pca)
    a = ad.AnnData(obs={"cell": np.arange(x.shape[0]).astype(str)})
    a.obsm["X_pca"] = x
    a.obsp["connectivities"] = sp.load_npz(graph).tocsr()
    a.uns["neighbors"] = {"connectivities_key": "connectivities", "distances_key": "distances",
                          "params": {"n_neighbors": 15, "method": "umap", "use_rep": "X_pca",
                                     "metric": "euclidean", "random_state": 0}}
    return a


def worker(who: str, pca: Path, graph: Path, out: Path) -> None:
    """Run one contender in this process and save its embedding."""
    import warnings

    import numpy as np

    warnings.simplefilter("ignore")
    a = _adata(pca, graph)
    t0 = time.perf_counter()
    if who == "ours":
        import logging

        import anndataoom as oom

        logging.basicConfig(level=logging.INFO)  # the init / epochs split, on stderr

        oom.tl.umap(a, random_state=0)
    else:
        import scanpy as sc

        sc.tl.umap(a, random_state=0)
    print(json.dumps({"umap_seconds": time.perf_counter() - t0}))
    np.save(out, a.obsm["X_umap"])


def build_graph(pca: Path, graph: Path) -> None:
    """Save the connectivities of ``sc.pp.neighbors(n_neighbors=15)`` on the PCA."""
    import anndata as ad
    import numpy as np
    import scanpy as sc
    import scipy.sparse as sp
    from pynndescent import PyNNDescentTransformer

    class CsrMatrixOut(PyNNDescentTransformer):
        """scanpy 1.11.5 calls ``getnnz`` on the result, which scipy 1.17's csr_array lacks."""

        def fit_transform(self, X, y=None, **kw):
            return sp.csr_matrix(super().fit_transform(X, y, **kw))

    x = np.load(pca)
    n = x.shape[0]
    a = ad.AnnData(obs={"cell": np.arange(n).astype(str)})
    a.obsm["X_pca"] = x
    # scanpy's default pynndescent settings (sc.pp.neighbors, transformer=None)
    nn = CsrMatrixOut(n_neighbors=15, metric="euclidean", random_state=0, n_jobs=None,
                      n_trees=min(64, 5 + round(n**0.5 / 20.0)), n_iters=max(5, round(np.log2(n))))
    sc.pp.neighbors(a, n_neighbors=15, use_rep="X_pca", random_state=0, transformer=nn)
    sp.save_npz(graph, a.obsp["connectivities"].tocsr())


def main() -> None:
    """Measure the contenders and print the table with ours/scanpy ratios."""
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pca", type=Path, required=True)
    p.add_argument("--graph", type=Path, help="connectivities .npz (default: built and cached)")
    p.add_argument("--contenders", default="ours,scanpy")
    p.add_argument("--scanpy-timeout", type=float, default=1800.0)
    p.add_argument("--rss-limit-gb", type=float, default=16.0)
    p.add_argument("--sample", type=int, default=2000)
    p.add_argument("--name", default=None)
    p.add_argument("--worker", choices=["ours", "scanpy"], help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    graph = args.graph or Path(tempfile.gettempdir()) / f"oom_umap_graph_{args.pca.stem}.npz"
    if args.worker:
        worker(args.worker, args.pca, graph, args.out)
        return
    if not graph.exists():
        print(f"building the kNN graph -> {graph}", flush=True)
        build_graph(args.pca, graph)

    import numpy as np

    from anndataoom.testing import neighbour_preservation

    name = args.name or args.pca.stem
    rows = {}
    high = np.load(args.pca)
    with tempfile.TemporaryDirectory() as tmp:
        for who in args.contenders.split(","):
            out = Path(tmp) / f"{who}.npy"
            timeout = args.scanpy_timeout if who == "scanpy" else 3600.0
            m = run_measured([sys.executable, __file__, "--pca", str(args.pca),
                              "--graph", str(graph), "--worker", who, "--out", str(out)],
                             stdout=Path(tmp) / f"{who}.out", stderr=Path(tmp) / f"{who}.err",
                             timeout=timeout, rss_limit=int(args.rss_limit_gb * 2**30))
            row = {"wall": m.wall, "cpu": m.cpu, "peak_rss": m.peak_rss, "exit_code": m.exit_code,
                   "killed_for": m.killed_for}
            if m.exit_code == 0:
                printed = json.loads((Path(tmp) / f"{who}.out").read_text())
                row["umap_seconds"] = printed["umap_seconds"]
                row["preservation"] = neighbour_preservation(high, np.load(out),
                                                             n_sample=args.sample)
                row["log"] = [ln for ln in (Path(tmp) / f"{who}.err").read_text().splitlines()
                              if "umap:" in ln]
            else:
                row["stderr"] = (Path(tmp) / f"{who}.err").read_text()[-2000:]
            rows[who] = row
            print(who, json.dumps(row, default=str), flush=True)
    print(f"\n{'':8} {'wall s':>8} {'umap s':>8} {'CPU s':>8} {'peak':>10} {'preserv.':>9}")
    for who, r in rows.items():
        print(f"{who:8} {r['wall']:8.1f} {r.get('umap_seconds', float('nan')):8.1f} "
              f"{r['cpu']:8.1f} "
              f"{fmt_bytes(r['peak_rss']):>10} {r.get('preservation', float('nan')):9.3f}"
              + (f"  ({r['killed_for']})" if r["killed_for"] else ""))
    if "ours" in rows and "scanpy" in rows and "preservation" in rows["scanpy"]:
        o, s = rows["ours"], rows["scanpy"]
        print(f"ratios ours/scanpy: wall {o['wall'] / s['wall']:.3f}, "
              f"peak {o['peak_rss'] / s['peak_rss']:.2f}, "
              f"preservation {o.get('preservation', 0) / s['preservation']:.3f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"umap_{name}.json").write_text(json.dumps(
        {"machine": machine(), "pca": str(args.pca), "graph": str(graph), "rows": rows},
        indent=1, default=str))


if __name__ == "__main__":
    main()
