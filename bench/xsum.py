"""CPU/wall of ``AnnDataOOM.X.sum(axis=1)``: one parallel streaming pass.

    .venv/bin/python bench/xsum.py FILE [REPEATS]

Each repeat opens the file afresh (the lazy matrix caches its sums).
"""

import os
import resource
import sys
import time

import anndataoom as oom


def cpu() -> float:
    """Return user + system CPU seconds used so far by this process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


path = sys.argv[1]
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3):
    a = oom.read(path)
    t, c = time.perf_counter(), cpu()
    s = a.X.sum(axis=1)
    w, u = time.perf_counter() - t, cpu() - c
    print(f"{os.path.basename(path)}: wall {w:.3f} s, cpu {u:.3f} s, "
          f"cpu/wall {u / w:.2f}, total {s.sum():.0f}")
