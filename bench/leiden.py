"""Leiden clustering of one kNN graph: ``oom.tl.leiden`` vs scanpy's igraph route.

Input: a scipy ``save_npz`` of scanpy's ``obsp['connectivities']`` (e.g.
``/work/data/mixed_100k_conn.npz``). Contenders, each in its own process
(wall, CPU and true peak RSS of the process tree by ``bench/_proc.py``):

- ``load``: reads the graph into an obs-only AnnData and stops (the floor
  every contender pays; its peak is the graph itself);
- ``ours``: ``oom.tl.leiden(adata, resolution, random_state=0)`` (n_iterations=2);
- ``scanpy``: ``sc.tl.leiden(adata, resolution, flavor="igraph",
  n_iterations=2, directed=False, random_state=0)``, igraph graph building
  included as scanpy does it.

Afterwards: modularity of each partition on the same graph (at the same
resolution, computed here with numpy), cluster counts, ARI ours vs scanpy,
and the ratios. Results go to ``bench/results/leiden_<name>.json``.

Usage::

    python bench/leiden.py /work/data/mixed_100k_conn.npz --resolutions 1,0.5
    python bench/leiden.py /work/data/mixed_1m_conn.npz --resolutions 1 --contenders load,ours
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from _proc import run_measured
from _report import machine

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

_LOAD = """
import sys, time, warnings
warnings.simplefilter("ignore")
import anndata as ad, numpy as np, pandas as pd, scipy.sparse as sp
{imports}
g = sp.load_npz(sys.argv[1]).tocsr()
a = ad.AnnData(obs=pd.DataFrame(index=np.arange(g.shape[0]).astype(str)))
a.obsp["connectivities"] = g
a.uns["neighbors"] = {{"connectivities_key": "connectivities", "params": {{}}}}
del g
res = float(sys.argv[3])
t = time.perf_counter()
{work}
print(f"TIME {{time.perf_counter() - t:.3f}}")
if "leiden" in a.obs:
    np.save(sys.argv[2], a.obs["leiden"].astype(int).to_numpy())
"""

SCRIPTS = {
    "load": ("", "pass"),
    "ours": ("import anndataoom as oom", "oom.tl.leiden(a, resolution=res, random_state=0)"),
    "scanpy": (
        "import scanpy as sc",
        'sc.tl.leiden(a, resolution=res, flavor="igraph", n_iterations=2, directed=False, random_state=0)',
    ),
}


def log(msg: str) -> None:
    """Progress on stderr."""
    print(msg, file=sys.stderr, flush=True)


def modularity(g: sp.csr_matrix, labels: np.ndarray, resolution: float) -> float:
    """Newman modularity of ``labels`` on the undirected graph A + Aᵀ (igraph's
    view of a scanpy adjacency), with resolution γ."""
    coo = (g + g.T).tocoo()
    two_m = coo.data.sum()
    inside = coo.data[labels[coo.row] == labels[coo.col]].sum()
    degree_by_cluster = np.bincount(labels, weights=np.asarray((g + g.T).sum(axis=1)).ravel())
    return float(inside / two_m - resolution * ((degree_by_cluster / two_m) ** 2).sum())


def run(path: Path, names: list[str], resolution: float, timeout: float, tmp: Path) -> dict:
    """Each contender in its own process at one resolution."""
    rows = {}
    for name in names:
        imports, work = SCRIPTS[name]
        out = tmp / f"{name}_{resolution}.npy"
        log(f"running {name} at resolution {resolution} …")
        m = run_measured(
            [sys.executable, "-c", _LOAD.format(imports=imports, work=work), str(path), str(out), str(resolution)],
            stdout=tmp / f"{name}.out", stderr=tmp / f"{name}.err", timeout=timeout, rss_limit=16 * 2**30,
        )
        if m.exit_code != 0:
            log(f"  {name} failed ({m.exit_code}, {m.killed_for}): {(tmp / f'{name}.err').read_text()[-2000:]}")
        said = (tmp / f"{name}.out").read_text().split()
        work_s = float(said[said.index("TIME") + 1]) if "TIME" in said else None
        rows[name] = {"wall_s": round(m.wall, 2), "work_s": work_s,
                      "cpu_s": round(m.cpu, 2), "peak_rss_mib": round(m.peak_rss / 2**20), "ok": m.exit_code == 0,
                      "labels": out if out.exists() else None}
        log(f"  {rows[name]}")
    return rows


def score(path: Path, rows: dict, resolution: float) -> None:
    """Modularity, cluster counts and ARI against scanpy's partition; drops
    the label paths from ``rows``."""
    from sklearn.metrics import adjusted_rand_score

    g = sp.load_npz(path).tocsr()
    labels = {n: np.load(p) for n, r in rows.items() if (p := r.pop("labels")) is not None}
    for name, lab in labels.items():
        rows[name]["modularity"] = round(modularity(g, lab, resolution), 5)
        rows[name]["clusters"] = int(lab.max()) + 1
    if "ours" in labels and "scanpy" in labels:
        rows["ours"]["ari_vs_scanpy"] = round(float(adjusted_rand_score(labels["scanpy"], labels["ours"])), 4)


def main(argv=None) -> int:
    """Run the contenders at each resolution and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("graph", type=Path, help="scipy .npz of the connectivities")
    ap.add_argument("--resolutions", default="1,0.5")
    ap.add_argument("--contenders", default="load,ours,scanpy")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--name", default=None)
    args = ap.parse_args(argv)
    names = args.contenders.split(",")
    g = sp.load_npz(args.graph)
    n, nnz = g.shape[0], g.nnz
    del g
    log(f"graph {args.graph}: {n:,} nodes, {nnz:,} stored entries")
    results = {}
    with tempfile.TemporaryDirectory(prefix="leiden-bench-") as tmp:
        for res in map(float, args.resolutions.split(",")):
            rows = run(args.graph, names, res, args.timeout, Path(tmp))
            score(args.graph, rows, res)
            results[res] = rows
    for res, rows in results.items():
        print(f"\nresolution {res}: {n:,} nodes, {nnz:,} stored entries")
        print("| contender | process wall s | work s | CPU s | peak RSS MiB | modularity | clusters | ARI vs scanpy |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, r in rows.items():
            print(f"| {name} | {r['wall_s']} | {r['work_s']} | {r['cpu_s']} | {r['peak_rss_mib']} "
                  f"| {r.get('modularity', '')} | {r.get('clusters', '')} | {r.get('ari_vs_scanpy', '')} |")
        o, s = rows.get("ours"), rows.get("scanpy")
        if o and s and o["ok"] and s["ok"]:
            print(f"scanpy / ours: work time {s['work_s'] / o['work_s']:.1f}×, process wall "
                  f"{s['wall_s'] / o['wall_s']:.1f}×, peak RSS {s['peak_rss_mib'] / o['peak_rss_mib']:.1f}×; "
                  f"modularity ours − scanpy = {o['modularity'] - s['modularity']:+.4f}")
    RESULTS.mkdir(exist_ok=True)
    name = args.name or f"leiden_{args.graph.stem}"
    (RESULTS / f"{name}.json").write_text(json.dumps(
        {"graph": str(args.graph), "nodes": n, "stored_entries": nnz, "machine": machine(),
         "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
         "results": {str(k): v for k, v in results.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
