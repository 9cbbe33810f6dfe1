"""Writing a lazy matrix to ``.h5ad``: the Rust sink vs the h5py streaming loop it replaced vs one read.

The input is ``normalize_total(1e4)`` → ``log1p`` (lazy, CSR) on a generated
100k-cell file (``bench/data/mixed_100k.h5ad``: ``bench/gen.py --mode mixed
--compression gzip``, made on first use), written with gzip (level 4, h5py's
default). Contenders, each in its own process (wall, CPU, true peak RSS of
the process tree by ``bench/_proc.py``):

- ``floor``: one parallel read + decode of every stored value of X
  (``_oom.open(FILE, "X").axis_sums()``, best of two), the least any write
  of X must do;
- ``ours``: ``AnnDataOOM.write_h5ad`` (X through the Rust sink: chunks
  compressed on all cores, HDF5 direct chunk writes; the rest by h5py);
- ``h5py``: the loop ``write_h5ad`` used before (a minimal copy below):
  blocks from ``X.iter_blocks`` through scipy into resizable h5py datasets,
  compressed by HDF5 on one thread; the rest by anndata's ``write_elem``,
  then fsync, as ours.

"work s" is the timed call alone (the write, or the floor's read), after
imports, ``oom.read`` and the size-factor pass of ``normalize_total``.
Afterwards both outputs are checked: X's row sums equal, ``X/data`` gzip.

Usage::

    .venv/bin/python bench/write_h5ad.py                          # all contenders
    .venv/bin/python bench/write_h5ad.py --contenders floor,ours --file other.h5ad
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _proc import run_measured
from _report import machine
from gen import generate

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

_SETUP = """
import sys, time, warnings
warnings.simplefilter("ignore")
src, out = sys.argv[1], sys.argv[2]
import anndataoom as oom
a = oom.read(src)
oom.pp.normalize_total(a, target_sum=1e4)
oom.pp.log1p(a)
"""

_OLD_LOOP = """
import os
import h5py, numpy as np, scipy.sparse as sp
from anndata.io import write_elem
from anndataoom._core._backed_array import BLOCK_VALUES

def enc(obj, kind, version):
    obj.attrs["encoding-type"] = kind
    obj.attrs["encoding-version"] = version

def write_csr_stream(group, key, X, dkw):
    n, m = X.shape
    g = group.create_group(key)
    enc(g, "csr_matrix", "0.1.0")
    g.attrs["shape"] = np.array([n, m], dtype=np.int64)
    idx_dtype = np.int32 if m < 2**31 else np.int64
    ptr_dtype = np.int32 if n * m < 2**31 else np.int64
    data = g.create_dataset("data", shape=(0,), maxshape=(None,), dtype=X.dtype,
                            chunks=(1 << 16,), **dkw)
    indices = g.create_dataset("indices", shape=(0,), maxshape=(None,), dtype=idx_dtype,
                               chunks=(1 << 16,), **dkw)
    indptr = np.zeros(n + 1, dtype=np.int64)
    pos = 0
    for a_, b_, block in X.iter_blocks(BLOCK_VALUES):
        if not sp.issparse(block):
            block = sp.csr_matrix(block)
        k = int(block.nnz)
        if k:
            data.resize((pos + k,))
            data[pos:pos + k] = block.data.astype(X.dtype, copy=False)
            indices.resize((pos + k,))
            indices[pos:pos + k] = block.indices.astype(idx_dtype, copy=False)
        indptr[a_ + 1:b_ + 1] = block.indptr[1:] + pos
        pos += k
    g.create_dataset("indptr", data=indptr.astype(ptr_dtype), **dkw)

def old_write_h5ad(a, path, dkw):
    a.strings_to_categoricals()
    with h5py.File(path, "w-") as f:
        enc(f, "anndata", "0.1.0")
        enc(f.create_group("layers"), "dict", "0.1.0")
        write_csr_stream(f, "X", a.X, dkw)
        for k in ("obs", "var"):
            write_elem(f, k, getattr(a, k), dataset_kwargs=dkw)
        for k in ("obsm", "varm", "obsp", "varp", "uns"):
            write_elem(f, k, dict(getattr(a, k)), dataset_kwargs=dkw)
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
"""

#: name -> script; each prints ``TIME <seconds of the timed call>``.
SCRIPTS = {
    "floor": """
import sys, time
from anndataoom import _oom
times = []
for _ in range(2):
    t = time.perf_counter()
    _oom.open(sys.argv[1], "X").axis_sums()
    times.append(time.perf_counter() - t)
print("TIME", min(times))
""",
    "ours": _SETUP + """
t = time.perf_counter()
a.write_h5ad(out, compression="gzip")
print("TIME", time.perf_counter() - t)
""",
    "h5py": _SETUP + _OLD_LOOP + """
t = time.perf_counter()
old_write_h5ad(a, out, {"compression": "gzip"})
print("TIME", time.perf_counter() - t)
""",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def check(out: Path) -> tuple:
    """Row sums of X (streamed by our reader) and the compression of ``X/data``."""
    import h5py
    import numpy as np

    from anndataoom import _oom

    with h5py.File(out, "r") as f:
        comp = f["X/data"].compression
    return np.asarray(_oom.open(str(out), "X").axis_sums()[0]), comp


def main(argv=None) -> int:
    """Run the contenders and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, default=None,
                    help="input .h5ad (default bench/data/mixed_<cells>.h5ad, made if missing)")
    ap.add_argument("--cells", type=int, default=100_000, help="cells, if --file must be made")
    ap.add_argument("--contenders", default="floor,ours,h5py")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--name", default=None,
                    help="results file bench/results/<name>.json (default write_h5ad_<cells>)")
    args = ap.parse_args(argv)
    size_name = (f"{args.cells // 1_000_000}m" if args.cells % 1_000_000 == 0
                 else f"{args.cells // 1000}k")
    args.name = args.name or f"write_h5ad_{size_name}"
    if args.file is None:
        args.file = BENCH / "data" / f"mixed_{size_name}.h5ad"
    if not args.file.exists():
        log(f"generating {args.file} …")
        args.file.parent.mkdir(parents=True, exist_ok=True)
        generate(args.file, args.cells, compression="gzip", mode="mixed", log=log)
    size = args.file.stat().st_size
    rows, sums = {}, {}
    with tempfile.TemporaryDirectory(dir=args.file.parent, prefix="write-out-") as tmp:
        for name in args.contenders.split(","):
            out = Path(tmp) / f"{name}.h5ad"
            log(f"running {name} …")
            m = run_measured([sys.executable, "-c", SCRIPTS[name], str(args.file), str(out)],
                             stdout=Path(tmp) / f"{name}.out", stderr=Path(tmp) / f"{name}.err",
                             timeout=args.timeout, rss_limit=12 * 2**30)
            if m.exit_code != 0:
                log(f"  {name} failed ({m.exit_code}, {m.killed_for}): "
                    f"{(Path(tmp) / f'{name}.err').read_text()[-2000:]}")
            said = (Path(tmp) / f"{name}.out").read_text().split()
            work = float(said[said.index("TIME") + 1]) if "TIME" in said else None
            rows[name] = {"wall_s": round(m.wall, 2), "work_s": work and round(work, 2),
                          "cpu_s": round(m.cpu, 2), "peak_rss_mib": round(m.peak_rss / 2**20),
                          "ok": m.exit_code == 0,
                          "out_mib": round(out.stat().st_size / 2**20) if out.exists() else None}
            if out.exists():
                sums[name], rows[name]["compression"] = check(out)
                out.unlink()
            log(f"  {rows[name]}")
    if "ours" in sums and "h5py" in sums:
        rows["h5py"]["row_sums_equal_ours"] = bool((sums["ours"] == sums["h5py"]).all())
    print(f"| contender | process wall s | work s | CPU s | peak RSS MiB | output MiB |  "
          f"({args.file.name}, {size / 2**20:.0f} MiB in, normalize_total → log1p → gzip)")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['wall_s']} | {r['work_s']} | {r['cpu_s']} | {r['peak_rss_mib']} "
              f"| {r['out_mib']} |")
    work = {k: r["work_s"] for k, r in rows.items() if r["work_s"]}
    if "ours" in work and "h5py" in work:
        print(f"\nh5py / ours work = {work['h5py'] / work['ours']:.2f}×, process wall = "
              f"{rows['h5py']['wall_s'] / rows['ours']['wall_s']:.2f}×; peak RSS ours / h5py = "
              f"{rows['ours']['peak_rss_mib'] / max(rows['h5py']['peak_rss_mib'], 1):.2f}; "
              f"X row sums equal: {rows['h5py'].get('row_sums_equal_ours')}")
    if "ours" in work and "floor" in work:
        print(f"ours work / read floor = {work['ours'] / work['floor']:.2f}×, "
              f"CPU/wall ours = {rows['ours']['cpu_s'] / rows['ours']['wall_s']:.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(
        {"file": str(args.file), "input_mib": size / 2**20, "machine": machine(),
         "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
