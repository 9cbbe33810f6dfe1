"""kNN graph benchmark: ``oom.pp.neighbors`` vs scanpy's ``sc.pp.neighbors`` on one X_pca.

Each contender runs in its own process (wall, CPU and true peak RSS by
``bench/_proc.py``); the child also reports the time of the neighbours call
alone and its RSS before the call. Recall@k is measured on ``--queries``
random cells against exact neighbours (float64 brute force).

    python bench/knn.py --pca /work/data/mixed_100k_pca.npy
    python bench/knn.py --pca /work/data/mixed_1m_pca.npy --contenders ours
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _proc import run_measured  # noqa: E402


def _rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def child(args) -> None:
    """Run one contender on the X_pca file; write the query rows' neighbours."""
    import anndata as ad
    import pandas as pd

    x = np.load(args.pca).astype(np.float32)
    a = ad.AnnData(obs=pd.DataFrame(index=np.arange(x.shape[0]).astype(str)), obsm={"X_pca": x})
    del x
    rss0 = _rss()
    t = time.perf_counter()
    if args.child == "ours":
        import anndataoom as oom

        oom.pp.neighbors(a, n_neighbors=args.k, use_rep="X_pca")
    else:
        import scanpy as sc

        sc.pp.neighbors(a, n_neighbors=args.k, use_rep="X_pca", random_state=0)
    t = time.perf_counter() - t
    q = np.load(args.queries_file)
    d = a.obsp["distances"]
    np.save(args.save, np.stack([d.indices[d.indptr[i]:d.indptr[i + 1]][: args.k - 1] for i in q]))
    print(json.dumps({"call_s": t, "rss_before": rss0}))


def exact(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Return the k − 1 nearest other cells of each query (float64 brute force)."""
    x64 = x.astype(np.float64)
    n2 = (x64**2).sum(1)
    out = []
    for s in range(0, len(q), 50):
        qq = q[s:s + 50]
        d2 = n2[qq, None] + n2[None, :] - 2 * x64[qq] @ x64.T
        d2[np.arange(len(qq)), qq] = np.inf
        part = np.argpartition(d2, k - 1, axis=1)[:, : k - 1]
        out.append(part)
    return np.concatenate(out)


def main() -> None:
    """Run every contender in its own process and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pca", required=True, help=".npy file with X_pca (n × d)")
    p.add_argument("--contenders", default="ours,scanpy")
    p.add_argument("--k", type=int, default=15)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--rss-limit-gb", type=float, default=16)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    p.add_argument("--queries-file", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    x = np.load(args.pca, mmap_mode="r")
    n = x.shape[0]
    q = np.random.default_rng(0).choice(n, min(args.queries, n), replace=False)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.save(tmp / "q.npy", q)
        truth = exact(np.asarray(x), q, args.k)
        rows = {}
        for name in args.contenders.split(","):
            cmd = [sys.executable, __file__, "--pca", args.pca, "--k", str(args.k), "--child", name,
                   "--save", str(tmp / f"{name}.npy"), "--queries-file", str(tmp / "q.npy")]
            m = run_measured(cmd, stdout=tmp / f"{name}.out", stderr=tmp / f"{name}.err",
                             timeout=args.timeout, rss_limit=int(args.rss_limit_gb * 2**30))
            if m.exit_code != 0:
                print(f"{name}: failed ({m.killed_for or m.exit_code}):",
                      (tmp / f"{name}.err").read_text()[-2000:])
                continue
            info = json.loads((tmp / f"{name}.out").read_text().strip().splitlines()[-1])
            ind = np.load(tmp / f"{name}.npy")
            recall = np.mean([len(np.intersect1d(a, b)) / (args.k - 1) for a, b in zip(ind, truth, strict=True)])
            rows[name] = dict(call=info["call_s"], wall=m.wall, cpu=m.cpu, peak=m.peak_rss / 2**30,
                              extra=(m.peak_rss - info["rss_before"]) / 2**30, recall=recall)
    print(f"kNN graph, {n:,} cells × {x.shape[1]} dims, k={args.k}, recall on {len(q)} cells")
    print(f"{'contender':<10}{'call s':>9}{'wall s':>9}{'cpu s':>9}{'peak GiB':>10}{'extra GiB':>11}{'recall':>8}")
    for name, r in rows.items():
        print(f"{name:<10}{r['call']:>9.1f}{r['wall']:>9.1f}{r['cpu']:>9.1f}{r['peak']:>10.2f}"
              f"{r['extra']:>11.2f}{r['recall']:>8.4f}")
    if "ours" in rows and "scanpy" in rows:
        o, s = rows["ours"], rows["scanpy"]
        print(f"scanpy / ours: call {s['call'] / o['call']:.1f}×, peak {s['peak'] / o['peak']:.1f}×, "
              f"extra memory {s['extra'] / max(o['extra'], 1e-9):.1f}×")


if __name__ == "__main__":
    main()
