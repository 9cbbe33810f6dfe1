"""Each step of the README's QC → PCA as time per stored value, beside one read of X.

    .venv/bin/python bench/passes.py FILE

Runs ``anndataoom run``'s preprocessing (QC with MT genes, filter_cells 200,
filter_genes 3, normalize_total 1e4, log1p, seurat HVG 2000, the HVG subset,
scale 10, PCA 50) on FILE, beside the read floor (one parallel read and
decode of every stored value: ``_oom.open(FILE, "X").axis_sums()``, best of
four: two before the steps and two after, as the machine's load drifts).
Prints a markdown table: wall and CPU seconds of each step, ns per stored
value of X (wall and CPU), the step's wall in read floors, and which
passes over the data the step makes (a step fused into an earlier pass costs
~0). The CPU column is the process's user + system time, so it includes
both cores.
"""

from __future__ import annotations

import argparse
import resource
import time

#: What each step reads (after this project's fusions).
PASSES = {
    "qc": "1 pass: QC + positive counts + rare genes' entries",
    "filter_cells": "none (QC's counts)",
    "filter_genes": "the removed cells only",
    "normalize_total": "none (QC's totals − removed rare genes)",
    "log1p": "none (lazy)",
    "highly_variable_genes": "1 pass: expm1 moments + log moments",
    "scale": "none (HVG pass's log moments)",
    "pca": "1 pass: Gram (spilling the HVG columns to a temporary file), then the projection from the spill",
}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    """Time the floor and each step; print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    args = ap.parse_args()

    import anndataoom as oom
    from anndataoom import _oom

    floor = []

    def time_floor():
        for _ in range(2):
            t = time.perf_counter()
            _oom.open(args.file, "X").axis_sums()
            floor.append(time.perf_counter() - t)

    time_floor()
    a = oom.read(args.file)
    nnz = a.X.nnz
    rows = []

    def step(name, fn):
        t, c = time.perf_counter(), _cpu()
        out = fn()
        rows.append((name, time.perf_counter() - t, _cpu() - c))
        return out

    a.var["mt"] = a.var_names.str.upper().str.startswith("MT-")
    step("qc", lambda: oom.pp.calculate_qc_metrics(a, qc_vars=["mt"], percent_top=None,
                                                   log1p=False, inplace=True))
    step("filter_cells", lambda: oom.pp.filter_cells(a, min_genes=200))
    step("filter_genes", lambda: oom.pp.filter_genes(a, min_cells=3))
    step("normalize_total", lambda: oom.pp.normalize_total(a, target_sum=1e4))
    step("log1p", lambda: oom.pp.log1p(a))
    step("highly_variable_genes",
         lambda: oom.pp.highly_variable_genes(a, n_top_genes=2000, flavor="seurat"))
    a = a[:, a.var["highly_variable"].to_numpy()]
    step("scale", lambda: oom.pp.scale(a, max_value=10))
    step("pca", lambda: oom.pp.pca(a, n_comps=50, random_state=0))
    time_floor()
    floor_s = min(floor)

    print(f"{args.file}: {nnz:,} stored values; read floor {floor_s:.2f} s "
          f"({floor_s / nnz * 1e9:.1f} ns/value; best of "
          f"{', '.join(f'{x:.2f}' for x in floor)} s, timed twice before and twice after the steps)\n")
    print("| step | wall s | CPU s | ns/value (wall) | ns/value (CPU) | × floor | reads |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, w, c in rows:
        print(f"| {name} | {w:.2f} | {c:.2f} | {w / nnz * 1e9:.1f} | {c / nnz * 1e9:.1f} | "
              f"{w / floor_s:.2f} | {PASSES[name]} |")
    w = sum(r[1] for r in rows)
    c = sum(r[2] for r in rows)
    print(f"| **QC → PCA** | **{w:.2f}** | **{c:.2f}** | **{w / nnz * 1e9:.1f}** | "
          f"**{c / nnz * 1e9:.1f}** | **{w / floor_s:.2f}** | |")


if __name__ == "__main__":
    main()
