"""Side-by-side benchmark of starting from Cell Ranger output.

From the tiled PBMC ``.h5ad`` of ``bench/gen.py`` (generated if missing) this
writes, once, the same matrix as a Cell Ranger v3 ``.h5`` (genes × cells CSC,
int32 counts, int64 indices, as Cell Ranger writes it; uncompressed like the
``.h5ad``) and as a Cell Ranger v3 mtx folder (``matrix.mtx.gz``,
``features.tsv.gz``, ``barcodes.tsv.gz``; entries ordered by cell as Cell
Ranger writes them).  Then, each in its own measured subprocess (wall, CPU,
true peak RSS; see ``bench/_proc.py``):

- ``ours_h5ad`` / ``ours_10x``: read + QC → PCA pipeline from the ``.h5ad``
  and from the 10x ``.h5`` (target: the 10x file costs nothing extra);
- ``scanpy_10x``: ``sc.read_10x_h5`` + the same pipeline in memory;
- ``ours_mtx`` / ``scanpy_mtx``: ``oom.read_10x_mtx`` (parse into a temp
  store) vs ``sc.read_10x_mtx`` (target: ≥ 5× faster at ≤ 1/10 the peak).

Usage::

    python bench/cellranger.py --cells 100000
    python bench/cellranger.py --cells 1000000 --only ours_h5ad,ours_10x
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from anndata.io import read_elem

from run import RESULTS, ensure_data, exclusive, log, run_contender, warm_page_cache

BLOCK = 1 << 24  # stored values per copied block

#: name -> (contender script, input: "h5ad", "10x" or "mtx"), in run order
CONTENDERS = {
    "ours_h5ad": ("ours.py", "h5ad"),
    "ours_10x": ("ours.py", "10x"),
    "scanpy_10x": ("scanpy_mem.py", "10x"),
    "ours_mtx": ("ours_mtx.py", "mtx"),
    "scanpy_mtx": ("scanpy_mtx.py", "mtx"),
}


def _names(f: h5py.File) -> tuple[pd.Index, pd.DataFrame]:
    return read_elem(f["obs"]).index, read_elem(f["var"])


def write_10x_h5(h5ad: Path, out: Path) -> None:
    """Copy X of ``h5ad`` into a Cell Ranger v3 ``.h5`` block by block."""
    tmp = out.with_name(out.name + ".tmp")
    with h5py.File(h5ad, "r") as src, h5py.File(tmp, "w") as f:
        x = src["X"]
        n_obs, n_vars = (int(v) for v in x.attrs["shape"])
        barcodes, var = _names(src)
        g = f.create_group("matrix")
        nnz = x["data"].shape[0]
        data = g.create_dataset("data", (nnz,), np.int32, chunks=(1 << 17,))
        indices = g.create_dataset("indices", (nnz,), np.int64, chunks=(1 << 17,))
        for a in range(0, nnz, BLOCK):
            b = min(a + BLOCK, nnz)
            data[a:b] = x["data"][a:b].astype(np.int32)
            indices[a:b] = x["indices"][a:b]
        g["indptr"] = x["indptr"][:].astype(np.int64)
        g["shape"] = np.array([n_vars, n_obs], dtype=np.int32)
        g["barcodes"] = barcodes.to_numpy().astype("S")
        feats = g.create_group("features")
        feats["_all_tag_keys"] = np.array([b"genome"])
        feats["feature_type"] = np.full(n_vars, b"Gene Expression")
        feats["genome"] = np.full(n_vars, b"GRCh38")
        feats["id"] = var["gene_ids"].to_numpy().astype("S")
        feats["name"] = var.index.to_numpy().astype("S")
    tmp.replace(out)


def write_mtx_folder(h5ad: Path, out: Path) -> None:
    """Write X of ``h5ad`` as a Cell Ranger v3 mtx folder, block of cells by block."""
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    with h5py.File(h5ad, "r") as src:
        x = src["X"]
        n_obs, n_vars = (int(v) for v in x.attrs["shape"])
        barcodes, var = _names(src)
        indptr = x["indptr"][:]
        with gzip.open(tmp / "matrix.mtx.gz", "wt", compresslevel=6) as fh:
            fh.write("%%MatrixMarket matrix coordinate integer general\n")
            fh.write('%metadata_json: {"software_version": "bench/cellranger.py"}\n')
            fh.write(f"{n_vars} {n_obs} {indptr[-1]}\n")
            step = 20_000
            for r0 in range(0, n_obs, step):
                r1 = min(r0 + step, n_obs)
                a, b = indptr[r0], indptr[r1]
                cells = np.repeat(np.arange(r0, r1) + 1, np.diff(indptr[r0:r1 + 1]))
                pd.DataFrame({"g": x["indices"][a:b] + 1, "c": cells,
                              "v": x["data"][a:b].astype(np.int64)}).to_csv(
                    fh, sep=" ", header=False, index=False)
    pd.DataFrame({0: var["gene_ids"].to_numpy(), 1: var.index, 2: "Gene Expression"}).to_csv(
        tmp / "features.tsv.gz", sep="\t", header=False, index=False)
    pd.Series(barcodes).to_csv(tmp / "barcodes.tsv.gz", header=False, index=False)
    tmp.replace(out)


def inputs(h5ad: Path, needed: set[str]) -> dict[str, Path]:
    """Return the ``.h5ad`` and the 10x ``.h5`` / mtx folder written from it (once)."""
    paths = {"h5ad": h5ad, "10x": h5ad.with_name(h5ad.stem + "_10x.h5"),
             "mtx": h5ad.with_name(h5ad.stem + "_mtx")}
    for kind, write in (("10x", write_10x_h5), ("mtx", write_mtx_folder)):
        if kind in needed and not paths[kind].exists():
            log(f"writing {paths[kind]} ...")
            t0 = time.perf_counter()
            write(h5ad, paths[kind])
            log(f"  done in {time.perf_counter() - t0:.0f} s")
    return paths


def table(report: dict) -> str:
    """Render the report as a markdown table."""
    rows = ["| contender | input | read s | total wall s | CPU s | peak RSS MiB | status |",
            "|---|---|---:|---:|---:|---:|---|"]
    for name, r in report["contenders"].items():
        read = r["stages"].get("read", float("nan"))
        rows.append(f"| {name} | {CONTENDERS[name][1]} | {read:.2f} "
                    f"| {r['wall']:.1f} | {r['cpu']:.1f} | {r['peak_rss'] / 2**20:,.0f} "
                    f"| {r['status']}{'' if r['error'] is None else ': ' + r['error']} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    """Prepare the inputs, run the contenders one by one, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", type=int, default=100_000)
    p.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated contenders")
    p.add_argument("--data-dir", type=Path, default=Path(__file__).parent / "data")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--rss-limit-gib", type=float, default=12)
    args = p.parse_args(argv)
    names = args.only.split(",")
    with exclusive(RESULTS / ".lock"):
        h5ad = ensure_data(args.data_dir.resolve(), args.cells, False, 0, "tile")
        paths = inputs(h5ad, {CONTENDERS[n][1] for n in names})
        name = f"cellranger_{h5ad.stem.removeprefix('pbmc_')}"
        logs = RESULTS / "logs" / name
        logs.mkdir(parents=True, exist_ok=True)
        report = {"name": name, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "command": " ".join(["python bench/cellranger.py", *(argv or sys.argv[1:])]),
                  "contenders": {}}
        for n in names:
            script, kind = CONTENDERS[n]
            warm_page_cache(paths[kind])
            log(f"running {n} on {paths[kind].name} ...")
            report["contenders"][n] = run_contender(
                n, script, Path(sys.executable), paths[kind], timeout=args.timeout,
                rss_limit=int(args.rss_limit_gib * 2**30), logs=logs)
        (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1))
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
