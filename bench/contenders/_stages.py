"""Stage-timing protocol of the contender scripts (standard library only).

A contender script runs one pipeline stage after another inside
:func:`stage`; each stage prints a JSON line prefixed with :data:`PREFIX` on
stdout when it begins and one with its wall time when it ends (so the runner
knows which stage was running when it killed or lost the process).  A stage
that raises prints its error and ends the process with exit code 3 (later
stages depend on it).  ``bench/run.py`` parses the lines.  The module is
stdlib-only because it also runs in the seed package's venv.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from contextlib import contextmanager

PREFIX = "@bench "
#: Exit code of a contender whose stage failed (the runner reports the reason).
STAGE_FAILED = 3


def emit(**record) -> None:
    """Print one protocol record."""
    print(PREFIX + json.dumps(record, default=str), flush=True)


@contextmanager
def stage(name: str):
    """Time the block as stage ``name``; on an exception report it and exit."""
    emit(begin=name)
    t0 = time.perf_counter()
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # incl. pyo3's PanicException (a BaseException)
        traceback.print_exc()
        emit(stage=name, wall=time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}")
        sys.exit(STAGE_FAILED)
    emit(stage=name, wall=time.perf_counter() - t0)


def path_arg() -> str:
    """Return the data file or store: the single command-line argument."""
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} FILE.h5ad|STORE.zarr")
    return sys.argv[1]


def read_scanpy(path: str):
    """Read ``path`` into memory as scanpy users do (``.zarr`` through anndata)."""
    import anndata as ad

    if path.endswith(".h5"):  # Cell Ranger output (bench/cellranger.py)
        import scanpy as sc

        return sc.read_10x_h5(path)
    return ad.read_zarr(path) if path.rstrip("/").endswith(".zarr") else ad.read_h5ad(path)


def groups_of(n_obs: int):
    """Deterministic, well-mixed labels ``g0..g{n-1}`` (the same for every contender).

    ``n`` is ``bench/run.py --groups`` (default 8), passed as ``BENCH_GROUPS``.
    """
    import numpy as np
    import pandas as pd

    n = int(os.environ.get("BENCH_GROUPS", "8"))
    k = (np.arange(n_obs, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(n)
    return pd.Categorical([f"g{i}" for i in k], categories=[f"g{i}" for i in range(n)])
