"""Concatenate many ``.h5ad`` files into one: ours vs anndata's ``concat_on_disk``.

Inputs: ``--files`` files of ``--cells`` tiled PBMC cells each (``bench/gen.py``,
seeds 0, 1, …; generated into ``--data-dir`` if missing), concatenated with
``label="sample"``, ``keys``, ``index_unique="-"`` into one ``.h5ad``.

Contenders, each in its own process (wall, CPU, true peak RSS of the process
tree by ``bench/_proc.py``):

- ``floor``: one read + write pass of the data: h5py reads every input's X
  arrays (``data``, ``indices``, ``indptr``) and appends them to one output
  file (no AnnData decoding, no merging, no metadata);
- ``ours``: ``anndataoom.concat_on_disk``;
- ``anndata``: ``anndata.experimental.concat_on_disk``.

Afterwards the outputs are compared (X by blocks of rows, obs and var
exactly).  Results go to ``bench/results/concat_<name>.json``.

Usage::

    python bench/concat.py --files 20 --cells 5000                       # 100k, all
    python bench/concat.py --files 20 --cells 50000 --contenders floor,ours
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from _proc import run_measured
from _report import machine
from gen import generate

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

_ARGS = """
import sys, time, warnings
warnings.simplefilter("ignore")
paths = sys.argv[2:]
out = sys.argv[1]
keys = [f"s{i}" for i in range(len(paths))]
"""
_START = "\nt = time.perf_counter()\n"

#: name -> (imports, work); the in-script time counts the work only.
SCRIPTS = {
    "floor": ("import h5py, numpy as np", """
with h5py.File(out, "w") as f:
    g = f.create_group("X")
    ds = {k: g.create_dataset(k, shape=(0,), maxshape=(None,), chunks=(1 << 16,), dtype=dt)
          for k, dt in (("data", "f4"), ("indices", "i4"), ("indptr", "i8"))}
    for p in paths:
        with h5py.File(p, "r") as src:
            for k, d in ds.items():
                v = src["X"][k][:]
                d.resize((d.shape[0] + len(v),))
                d[-len(v):] = v
"""),
    "ours": ("import anndataoom as oom", """
oom.concat_on_disk(paths, out, label="sample", keys=keys, index_unique="-")
"""),
    "anndata": ("from anndata.experimental import concat_on_disk", """
concat_on_disk(paths, out, label="sample", keys=keys, index_unique="-")
"""),
}
SCRIPTS = {k: _ARGS + imp + _START + work + "\nprint(f'TIME {time.perf_counter() - t:.3f}')\n"
           for k, (imp, work) in SCRIPTS.items()}


def log(msg: str) -> None:
    """Progress on stderr."""
    print(msg, file=sys.stderr, flush=True)


def inputs(data_dir: Path, n_files: int, n_cells: int) -> list[Path]:
    """Return the input files, generated once (seed = file number)."""
    paths = []
    for i in range(n_files):
        p = data_dir / f"concat_{n_cells}_{i:02d}.h5ad"
        if not p.exists():
            generate(p, n_cells, seed=i, log=lambda m: None)
        paths.append(p)
    return paths


def _same_x(a: h5py.Group, b: h5py.Group, block: int = 200_000) -> bool:
    """Equal CSR matrices, compared by blocks of rows (bounded memory)."""
    if tuple(a.attrs["shape"]) != tuple(b.attrs["shape"]):
        return False
    pa, pb = a["indptr"][:], b["indptr"][:]
    if not np.array_equal(pa, pb):
        return False
    for s in range(0, len(pa) - 1, block):
        lo, hi = int(pa[s]), int(pa[min(s + block, len(pa) - 1)])
        for k in ("data", "indices"):
            if not np.array_equal(a[k][lo:hi], b[k][lo:hi]):
                return False
    return True


def same_output(ours: Path, theirs: Path) -> bool:
    """X, obs and var of two concatenated files are equal."""
    import anndata as ad
    import pandas as pd

    with h5py.File(ours, "r") as fa, h5py.File(theirs, "r") as fb:
        if not _same_x(fa["X"], fb["X"]):
            return False
        obs_a, obs_b = ad.io.read_elem(fa["obs"]), ad.io.read_elem(fb["obs"])
        var_a, var_b = ad.io.read_elem(fa["var"]), ad.io.read_elem(fb["var"])
    try:
        # anndata's writer may turn strings into categoricals: compare values
        pd.testing.assert_frame_equal(obs_a, obs_b, check_dtype=False, check_categorical=False)
        pd.testing.assert_frame_equal(var_a, var_b, check_dtype=False, check_categorical=False)
    except AssertionError as e:
        log(f"  obs/var differ: {e}")
        return False
    return True


def main(argv=None) -> int:
    """Run the contenders and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--cells", type=int, default=5000, help="cells per input file")
    ap.add_argument("--contenders", default="floor,ours,anndata")
    ap.add_argument("--data-dir", type=Path, default=BENCH / "data")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--name", default=None)
    args = ap.parse_args(argv)
    names = args.contenders.split(",")
    paths = inputs(args.data_dir, args.files, args.cells)
    total = args.files * args.cells
    size = sum(p.stat().st_size for p in paths)
    log(f"{args.files} files × {args.cells:,} cells = {total:,} cells, {size / 2**30:.2f} GiB")
    rows, outs = {}, {}
    with tempfile.TemporaryDirectory(dir=args.data_dir, prefix="concat-out-") as tmp:
        for name in names:
            out = Path(tmp) / f"{name}.h5ad"
            # the previous contender's output must not be written back during this one
            os.sync()
            log(f"running {name} …")
            m = run_measured([sys.executable, "-c", SCRIPTS[name], str(out), *map(str, paths)],
                             stdout=Path(tmp) / f"{name}.out", stderr=Path(tmp) / f"{name}.err",
                             timeout=args.timeout, rss_limit=12 * 2**30)
            err = (Path(tmp) / f"{name}.err").read_text()[-2000:]
            if m.exit_code != 0:
                log(f"  {name} failed ({m.exit_code}, {m.killed_for}): {err}")
            said = (Path(tmp) / f"{name}.out").read_text().split()
            work = float(said[said.index("TIME") + 1]) if "TIME" in said else None
            rows[name] = {"wall_s": round(m.wall, 2), "work_s": work, "cpu_s": round(m.cpu, 2),
                          "peak_rss_mib": round(m.peak_rss / 2**20), "ok": m.exit_code == 0,
                          "out_gib": round(out.stat().st_size / 2**30, 3) if out.exists() else None}
            log(f"  {rows[name]}")
            outs[name] = out
        if "ours" in outs and "anndata" in outs and rows["ours"]["ok"] and rows["anndata"]["ok"]:
            rows["anndata"]["equal_to_ours"] = same_output(outs["ours"], outs["anndata"])
    print(f"| contender | process wall s | work s (after imports) | CPU s | peak RSS MiB "
          f"| output GiB |  ({total:,} cells, {args.files} files, {size / 2**30:.2f} GiB in)")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['wall_s']} | {r['work_s']} | {r['cpu_s']} | {r['peak_rss_mib']} "
              f"| {r['out_gib']} |")
    if "floor" in rows and "ours" in rows and rows["ours"]["work_s"]:
        print(f"\nfloor / ours work time = {rows['floor']['work_s'] / rows['ours']['work_s']:.2f} "
              "(target ≥ 0.5)")
    if "anndata" in rows and "ours" in rows and rows["ours"]["work_s"]:
        print(f"anndata / ours work time = "
              f"{rows['anndata']['work_s'] / rows['ours']['work_s']:.2f}, "
              f"peak RSS ours / anndata = "
              f"{rows['ours']['peak_rss_mib'] / max(rows['anndata']['peak_rss_mib'], 1):.2f}, "
              f"equal: {rows['anndata'].get('equal_to_ours')}")
    RESULTS.mkdir(exist_ok=True)
    name = args.name or f"concat_{args.files}x{args.cells}"
    (RESULTS / f"{name}.json").write_text(json.dumps(
        {"files": args.files, "cells_per_file": args.cells, "input_gib": size / 2**30,
         "machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
         "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
