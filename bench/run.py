"""Side-by-side benchmark: the same pipeline, the same file, one process each.

Pipeline: QC (with MT- genes) → normalize_total(1e4) → log1p → HVG(2000) →
subset → scale(max_value=10) → PCA(50), on PBMC 3k cells tiled to
``--cells`` by ``bench/gen.py`` (generated into ``--data-dir`` if missing).

Each contender (a script in ``bench/contenders/``) runs in its own
subprocess and prints per-stage wall times; this runner measures total
wall, CPU (user+sys) and the true peak RSS of the process tree (see
``bench/_proc.py``), prints a markdown table and the ours/theirs ratios,
and writes everything to ``bench/results/<name>.json``.

Contenders: ``floor`` (one full read of X), ``ours`` (this package),
``seed`` (anndataoom 0.1.8 from PyPI in ``bench/.venv-seed``, created on
first use), ``scanpy`` (in memory), ``dask`` (scanpy on a lazy dask X; dask
comes from ``bench/requirements.txt``, installed on first use).

``--store zarr`` runs on a Zarr v3 copy of the file (written once next to it
by ``anndataoom.write_zarr``; contenders ``ours`` and ``scanpy``, which reads
it with ``anndata.read_zarr``).  ``--workload markers`` times normalize → log1p →
``rank_genes_groups`` (t-test, then wilcoxon) over 8 fixed groups instead of
the pipeline (contenders ``ours`` and ``scanpy``). ``--workload main-job``
runs the README's whole job (``anndataoom run``'s steps: filters included,
then neighbors, UMAP, Leiden and markers) on ``bench/gen.py --mode mixed``
data (a connected kNN graph, as an atlas gives): contender ``ours`` with our
graph steps, ``scanpy`` with scanpy's on the same ``X_pca``, plus the kNN
recall and UMAP neighbour preservation of each (``contenders/_main_job.py``).
``--workload recipes`` times ``recipe_zheng17`` and ``recipe_pearson_residuals``
(1,000 genes each, each on the file's counts; contenders ``ours`` and ``scanpy``).

With no arguments: the 100k side-by-side pipeline run of all contenders.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

import h5py

from _proc import run_measured
from _report import FLOOR, machine, render
from contenders._stages import PREFIX
from gen import default_name

BENCH = Path(__file__).resolve().parent
CONTENDERS_DIR = BENCH / "contenders"
SEED_VENV = BENCH / ".venv-seed"
RESULTS = BENCH / "results"

#: workload -> name -> (script in bench/contenders, interpreter: "main" or
#: "seed", reads Zarr stores), in run order.
WORKLOADS = {
    "pipeline": {
        FLOOR: ("floor.py", "main", False),
        "ours": ("ours.py", "main", True),
        "seed": ("seed.py", "seed", False),
        "scanpy": ("scanpy_mem.py", "main", True),
        "dask": ("dask_lazy.py", "main", False),
    },
    "markers": {
        "ours": ("ours_markers.py", "main", True),
        "scanpy": ("scanpy_markers.py", "main", True),
    },
    "main-job": {
        FLOOR: ("floor.py", "main", False),
        "ours": ("ours_main.py", "main", True),
        "scanpy": ("scanpy_main.py", "main", True),
    },
    "recipes": {
        "ours": ("ours_recipes.py", "main", True),
        "scanpy": ("scanpy_recipes.py", "main", True),
    },
}
CONTENDERS = WORKLOADS["pipeline"]
#: Stage names of each workload, in the order the scripts run them.
STAGES = {
    "pipeline": ("import", "read", "qc", "normalize", "log1p", "hvg", "subset", "scale", "pca"),
    "markers": ("import", "read", "normalize", "log1p", "groups", "t-test", "wilcoxon"),
    "main-job": ("import", "read", "qc", "filter", "normalize+log1p", "hvg", "scale", "pca",
                 "neighbors", "umap", "leiden", "markers", "quality"),
    "recipes": ("import", "read", "zheng17", "read2", "pearson"),
}
#: Data of each workload (``bench/gen.py --mode``).
DATA_MODE = {"pipeline": "tile", "markers": "tile", "main-job": "mixed", "recipes": "mixed"}


def log(msg: str) -> None:
    """Progress line on stderr (stdout is the report)."""
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- environments

def seed_python() -> Path:
    """Interpreter of ``bench/.venv-seed``, creating and filling it if needed."""
    py = SEED_VENV / "bin" / "python"
    check = [str(py), "-c", "import anndataoom, sklearn"]
    if py.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return py
    log(f"creating {SEED_VENV} with anndataoom 0.1.8 ...")
    subprocess.run([sys.executable, "-m", "venv", str(SEED_VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "-r",
                    str(BENCH / "requirements-seed.txt")], check=True)
    return py


def ensure_dask() -> None:
    """Install ``bench/requirements.txt`` into this (the main) venv if dask is missing."""
    if find_spec("dask") is None:
        log("installing bench/requirements.txt (dask) ...")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r",
                        str(BENCH / "requirements.txt")], check=True)


def versions(seed: Path | None) -> dict:
    """Package versions of the main venv, and of the seed venv if given."""
    out = {}
    for pkg in ("anndataoom", "anndata", "scanpy", "numpy", "scipy", "h5py", "dask"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    if seed is not None:
        code = "import anndataoom, sklearn; print(anndataoom.__version__, sklearn.__version__)"
        res = subprocess.run([str(seed), "-c", code], capture_output=True, text=True, check=True)
        oom, sklearn = res.stdout.split()
        out["seed"] = {"anndataoom": oom, "sklearn": sklearn}
    return out


# ------------------------------------------------------------------------ data

def ensure_data(data_dir: Path, n_cells: int, gzip: bool, seed: int, mode: str) -> Path:
    """Path of the data file, generated with ``bench/gen.py --mode mode`` if missing."""
    path = data_dir / default_name(n_cells, "gzip" if gzip else None, mode)
    if not path.exists():
        free = shutil.disk_usage(data_dir if data_dir.exists() else data_dir.parent).free
        log(f"generating {path} ({free / 2**30:.0f} GiB free) ...")
        subprocess.run([sys.executable, str(BENCH / "gen.py"), "--n-cells", str(n_cells),
                        "--seed", str(seed), "--compression", "gzip" if gzip else "none",
                        "--mode", mode, "-o", str(path)], check=True)
    return path


def ensure_zarr(h5ad: Path) -> Path:
    """Return a Zarr v3 copy of ``h5ad`` next to it, written once by anndataoom (streamed)."""
    store = h5ad.with_suffix(".zarr")
    if not store.exists():
        log(f"writing {store} ...")
        code = ("import sys, anndataoom as oom; "
                "oom.read(sys.argv[1]).write_zarr(sys.argv[2], zarr_format=3)")
        subprocess.run([sys.executable, "-c", code, str(h5ad), str(store)], check=True)
    return store


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def describe(path: Path) -> dict:
    """Shape, stored values, compression and size of the data file or store."""
    size = sum(p.stat().st_size for p in _files(path))
    if path.is_dir():
        import zarr

        x = zarr.open_group(path, mode="r")["X"]
        n_obs, n_vars = (int(v) for v in x.attrs["shape"])
        data = x["data"]
        codecs = "+".join(type(c).__name__ for c in data.compressors) or None
        return {"path": str(path), "n_obs": n_obs, "n_vars": n_vars, "nnz": int(data.shape[0]),
                "compression": f"zarr v{data.metadata.zarr_format} {codecs}", "size_bytes": size}
    with h5py.File(path, "r") as f:
        x = f["X"]
        n_obs, n_vars = (int(v) for v in x.attrs["shape"])
        return {"path": str(path), "n_obs": n_obs, "n_vars": n_vars,
                "nnz": int(x["data"].shape[0]), "compression": x["data"].compression,
                "size_bytes": size}


def warm_page_cache(path: Path) -> None:
    """Read the data once so every contender starts with it in the page cache."""
    for p in _files(path):
        with open(p, "rb", buffering=0) as fh:
            while fh.read(1 << 24):
                pass


# ------------------------------------------------------------------ contenders

def _parse(stdout: Path) -> tuple[dict, str | None, str | None, dict]:
    """Stage walls, the unfinished stage, its error (if reported) and the result."""
    stages, running, error, result = {}, None, None, {}
    for line in stdout.read_text(errors="replace").splitlines():
        if not line.startswith(PREFIX):
            continue
        rec = json.loads(line[len(PREFIX):])
        if "begin" in rec:
            running = rec["begin"]
        elif "stage" in rec:
            stages[rec["stage"]] = rec["wall"]
            error = rec.get("error")
            running = rec["stage"] if error else None
        elif "result" in rec:
            result = rec["result"]
    return stages, running, error, result


def _last_line(path: Path) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def run_contender(
    name: str, script: str, python: Path, data: Path, *, timeout: float, rss_limit: int,
    logs: Path,
) -> dict:
    """Run one contender script on ``data``; return its measured record."""
    script = CONTENDERS_DIR / script
    out, err = logs / f"{name}.out", logs / f"{name}.err"
    before = set(data.parent.iterdir())
    load = os.getloadavg()[0]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as cwd:
        m = run_measured([str(python), str(script), str(data)], stdout=out, stderr=err,
                         timeout=timeout, rss_limit=rss_limit, env=env, cwd=Path(cwd))
    # files a contender leaves next to its input (the seed writes a sidecar)
    left = sorted(p for p in set(data.parent.iterdir()) - before
                  if p.name.startswith(data.name))
    for p in left:
        p.unlink()
    stages, running, error, result = _parse(out)
    rec = {
        "status": "ok", "error": None, "failed_stage": running,
        "stages": stages, "result": result,
        "wall": m.wall, "cpu": m.cpu, "cpu_user": m.cpu_user, "cpu_sys": m.cpu_sys,
        "peak_rss": m.peak_rss, "peak_rss_polled": m.peak_rss_polled,
        "peak_hwm_polled": m.peak_hwm_polled, "ru_maxrss": m.ru_maxrss,
        "runner_hwm": m.runner_hwm, "exit_code": m.exit_code,
        "left_files": [p.name for p in left], "loadavg_1m_before": load,
    }
    if m.killed_for == "timeout":
        rec.update(status="timeout", error=f"killed after {timeout:.0f} s")
    elif m.killed_for == "rss-limit":
        rec.update(status="failed", error=f"killed: RSS above {rss_limit / 2**30:.1f} GiB")
    elif error is not None:
        rec.update(status="failed", error=error)
    elif m.exit_code != 0:
        code = m.exit_code
        why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        rec.update(status="failed", error=f"{why}: {_last_line(err)}".rstrip(": "))
    return rec


# ------------------------------------------------------------------------- main

@contextmanager
def exclusive(lock: Path):
    """Hold an exclusive lock on ``lock``, waiting while another run holds it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another bench/run.py holds {lock}; waiting for it to finish ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def parse_args(argv):
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=int, default=100_000, help="cells in the data set")
    ap.add_argument("--workload", choices=list(WORKLOADS), default="pipeline")
    ap.add_argument("--store", choices=["h5ad", "zarr"], default="h5ad",
                    help="run on the .h5ad file or on a Zarr v3 copy of it")
    ap.add_argument("--contenders", default=None,
                    help="comma-separated subset (default: all the workload and store allow) "
                    "of: " + ", ".join(CONTENDERS))
    ap.add_argument("--timeout-per-contender", type=float, default=40, metavar="MIN",
                    help="minutes before a contender's process tree is killed")
    ap.add_argument("--rss-limit", type=float, default=0.75 * machine()["ram_bytes"] / 2**30,
                    metavar="GIB", help="kill a contender whose tree RSS exceeds this "
                    "(default: 75%% of RAM, before the OOM killer hits a bystander)")
    ap.add_argument("--data-dir", type=Path, default=BENCH / "data")
    ap.add_argument("--gzip", action="store_true", help="use the gzip-compressed file")
    ap.add_argument("--seed", type=int, default=0, help="generator seed (new files only)")
    ap.add_argument("--name", help="results name (default: from the data file)")
    ap.add_argument("--data-mode", choices=["tile", "mixed"], default=None,
                    help="bench/gen.py mode of the data (default: the workload's: "
                    + ", ".join(f"{k} {v}" for k, v in DATA_MODE.items()) + ")")
    ap.add_argument("--groups", type=int, default=8,
                    help="markers workload: number of cell groups (a 1M-cell Leiden run gives "
                    "hundreds)")
    args = ap.parse_args(argv)
    if args.groups < 2:
        ap.error("--groups must be at least 2")
    allowed = {n: c for n, c in WORKLOADS[args.workload].items()
               if args.store == "h5ad" or c[2]}
    if args.contenders is None:
        names = list(allowed)
    else:
        names = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        ap.error(f"contenders not available for --workload {args.workload} "
                 f"--store {args.store}: {', '.join(unknown)}")
    args.contenders_table = allowed
    args.names = [c for c in allowed if c in names]  # fixed order
    return args


def main(argv=None) -> int:
    """Run the benchmark (one at a time on a machine) and print the report."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    with exclusive(RESULTS / ".lock"):
        report = run_all(args, argv)
    print(render(report))
    return 0


def run_all(args, argv: list[str]) -> dict:
    """Prepare environments and data, run the contenders, save the JSON report."""
    pythons = {"main": Path(sys.executable)}
    os.environ["BENCH_GROUPS"] = str(args.groups)  # read by the contenders' groups_of
    if "seed" in args.names:
        pythons["seed"] = seed_python()
    if "dask" in args.names:
        ensure_dask()
    data = ensure_data(args.data_dir.resolve(), args.cells, args.gzip, args.seed,
                       args.data_mode or DATA_MODE[args.workload])
    name = args.name or data.stem.removeprefix("pbmc_")
    if args.store == "zarr":
        data = ensure_zarr(data)
        name = args.name or f"{name}_zarr"
    if args.workload != "pipeline":
        name = args.name or f"{name}_{args.workload}"
    logs = RESULTS / "logs" / name
    logs.mkdir(parents=True, exist_ok=True)
    report = {
        "name": name,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(["python bench/run.py", *argv]),
        "machine": machine(),
        "workload": args.workload,
        "stages": list(STAGES[args.workload]),
        "versions": versions(pythons.get("seed")),
        "data": describe(data),
        "contenders": {},
    }
    log(f"warming the page cache with {data} ...")
    warm_page_cache(data)
    for c in args.names:
        log(f"running {c} ...")
        script, interp, _ = args.contenders_table[c]
        rec = run_contender(c, script, pythons[interp], data,
                            timeout=args.timeout_per_contender * 60,
                            rss_limit=int(args.rss_limit * 2**30), logs=logs)
        report["contenders"][c] = rec
        log(f"  {c}: {rec['status']}, {rec['wall']:.1f} s wall, {rec['cpu']:.1f} s CPU, "
            f"peak RSS {rec['peak_rss'] / 2**30:.2f} GiB"
            + (f" ({rec['error']})" if rec["error"] else ""))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}.json"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, out)
    log(f"wrote {out} (logs in {logs})")
    return report


if __name__ == "__main__":
    sys.exit(main())
