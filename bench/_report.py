"""Machine description and the markdown tables printed by ``bench/run.py``."""

from __future__ import annotations

import os
import platform

#: Pipeline stages, in the order the contender scripts run them (reports
#: written before workloads existed carry no stage list).
STAGES = ("import", "read", "qc", "normalize", "log1p", "hvg", "subset", "scale", "pca")
FLOOR = "floor"


def machine() -> dict:
    """nproc, CPU model, RAM, kernel and the current 1-minute load average."""
    model = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kb = int(next(ln for ln in fh if ln.startswith("MemTotal")).split()[1])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "ram_bytes": mem_kb * 1024,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_1m": os.getloadavg()[0],
    }


def fmt_bytes(n: int | None) -> str:
    """``812 MiB`` / ``1.77 GiB``."""
    if n is None:
        return "–"
    if n < 2**30:
        return f"{n / 2**20:.0f} MiB"
    return f"{n / 2**30:.2f} GiB"


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def _status(r: dict) -> str:
    if r["status"] == "ok":
        return "ok"
    where = f" in {r['failed_stage']}" if r.get("failed_stage") else ""
    if r["status"] == "timeout":
        return f"timeout{where}"
    return f"failed{where}: {r['error'].splitlines()[0][:160]}"


def pipeline_table(results: dict, stages=STAGES) -> str:
    """Contender × stage wall times (s), totals, CPU/wall, peak RSS, status."""
    head = ["contender", *stages, "total wall (s)", "CPU (s)", "CPU/wall", "peak RSS", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        if name == FLOOR:
            continue
        st = r.get("stages", {})
        cells = [
            name,
            *(_fmt_s(st.get(s)) for s in stages),
            _fmt_s(r["wall"]),
            _fmt_s(r["cpu"]),
            f"{r['cpu'] / r['wall']:.2f}" if r["wall"] else "–",
            fmt_bytes(r["peak_rss"]),
            _status(r).replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def floor_line(results: dict) -> str | None:
    """One line with the time of a single full read of X (ours, h5py)."""
    r = results.get(FLOOR)
    if r is None:
        return None
    st = r.get("stages", {})
    parts = [f"{k} {_fmt_s(st.get(k))} s" for k in ("ours_read", "h5py_read")]
    tail = "" if r["status"] == "ok" else f" ({_status(r)})"
    return "Floor (one full read + decode of X): " + ", ".join(parts) + tail


def ratio_table(results: dict, ours: str = "ours") -> str | None:
    """ours/theirs for total wall and peak RSS (< 1 means ours is better)."""
    mine = results.get(ours)
    others = [n for n in results if n not in (ours, FLOOR)]
    if mine is None or mine["status"] != "ok" or not others:
        return None
    lines = ["| vs | wall ours/theirs | speed-up | peak RSS ours/theirs |", "|---|---|---|---|"]
    for name in others:
        r = results[name]
        if r["status"] != "ok":
            lines.append(f"| {name} | n/a ({r['status']}) | – | – |")
            continue
        lines.append(
            f"| {name} | {mine['wall'] / r['wall']:.3f} | {r['wall'] / mine['wall']:.1f}× | "
            f"{mine['peak_rss'] / r['peak_rss']:.3f} |"
        )
    return "\n".join(lines)


#: Result fields of the main-job workload shown by :func:`quality_table`.
QUALITY = ("leiden_clusters", "knn_recall", "umap_preservation")


def quality_table(results: dict) -> str | None:
    """Per contender: the job's wall (its steps, without import and quality) and quality."""
    rows = {n: r for n, r in results.items() if any(k in r.get("result", {}) for k in QUALITY)}
    if not rows:
        return None
    head = ["contender", "job steps (s)", *QUALITY]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        job = sum(v for k, v in r["stages"].items() if k not in ("import", "quality"))
        res = r["result"]
        cells = [f"{res[k]:.3f}" if isinstance(res.get(k), float) else str(res.get(k, "–"))
                 for k in QUALITY]
        lines.append("| " + " | ".join([name, _fmt_s(job), *cells]) + " |")
    return "\n".join(lines)


def render(report: dict) -> str:
    """Render the whole markdown report of one run."""
    m, d = report["machine"], report["data"]
    out = [
        f"## {report['name']} ({report.get('workload', 'pipeline')}): "
        f"{d['n_obs']:,} × {d['n_vars']:,}, "
        f"{d['nnz']:,} stored values, {d['compression'] or 'uncompressed'}, "
        f"{fmt_bytes(d['size_bytes'])} on disk",
        "",
        f"{m['nproc']} cores ({m['cpu_model']}), {fmt_bytes(m['ram_bytes'])} RAM, "
        f"load average at start {m['loadavg_1m']:.2f}; `{report['command']}`",
        "",
        pipeline_table(report["contenders"], report.get("stages", STAGES)),
    ]
    floor = floor_line(report["contenders"])
    if floor:
        out += ["", floor]
    for extra in (ratio_table(report["contenders"]), quality_table(report["contenders"])):
        if extra:
            out += ["", extra]
    return "\n".join(out)
