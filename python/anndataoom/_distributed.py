"""The streamed passes of :mod:`anndataoom.pp`, optionally spread over a dask cluster.

Each pass (QC metrics, positive counts, per-gene moments, the PCA Gram
matrix and projection) is a Rust kernel over a lazy matrix that returns an
``_oom.PassState``: the core's state of the rows it read.  Outside
:func:`distributed` the kernel runs here on the whole matrix.  Inside, the
rows are cut into the runs the pass folds in one process (``Matrix.runs``),
one task per run: the worker receives the matrix pickled as its plan,
rebuilds it (opening the file itself, see ``_oom.Matrix.to_plan``), folds
its run into one state with the same kernel and sends it back as bytes;
``PassState.combine`` merges the states in row order as the core merges its
runs, so results equal the single-process ones to the last bit.  This
module only schedules: every number is computed, merged and finalised in
Rust (``PassState.finalize``).
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

import numpy as np

from anndataoom import _oom
from anndataoom._core._counts import Counts, Rare, resolved

__all__ = [
    "count_above",
    "distributed",
    "moments",
    "pca",
    "positive_counts",
    "qc_metrics",
    "regress_stats",
    "row_sums",
    "run_pass",
]

#: Above this many variables the single-process PCA streams X once per
#: Krylov iteration; only the one-pass Gram solver is spread over workers
#: (the same limit as the Rust ``GRAM_MAX_FEATURES``).
GRAM_MAX_FEATURES = 10_000

_client: ContextVar = ContextVar("anndataoom_dask_client", default=None)


@contextlib.contextmanager
def distributed(client):
    r"""Run the passes of :mod:`anndataoom.pp` on the workers of a dask cluster.

    Inside the block, ``calculate_qc_metrics``, ``filter_cells``,
    ``filter_genes``, ``normalize_total``, ``highly_variable_genes``,
    ``scale``, ``pca``, ``regress_out``, ``combat``, ``tl.rank_genes_groups``
    (its moments pass) and the
    0.1.8 ``chunked_*`` functions split every pass over the matrix into
    the runs of rows the same pass folds in this process (one per thread
    here), one task per run.  Each worker opens the ``.h5ad`` file or
    ``.zarr`` store itself (the path must be readable from the workers) and
    rebuilds the lazy matrix — selection plus transforms — from its pickled
    plan; the workers' states are combined on the driver in row order, so
    results are the single-process ones to the last bit.  The number of
    tasks is therefore the driver's thread count.  ``log1p`` and the other
    transforms stay lazy and need no pass.
    PCA with more than 10,000 variables (Krylov solver, one pass per
    iteration), the residual pass of the ``pearson_residuals`` flavor and
    the Wilcoxon rank pass run in this process.

    Parameters
    ----------
    client
        A ``dask.distributed.Client``.

    Examples
    --------
    >>> from dask.distributed import Client, LocalCluster
    >>> import anndataoom as oom
    >>> with LocalCluster(n_workers=4, threads_per_worker=1) as cluster, \\
    ...         Client(cluster) as client, oom.distributed(client):
    ...     adata = oom.read("pbmc.h5ad")
    ...     oom.pp.calculate_qc_metrics(adata, inplace=True)
    ...     oom.pp.normalize_total(adata)
    ...     oom.pp.log1p(adata)
    ...     oom.pp.highly_variable_genes(adata, n_top_genes=2000)
    ...     oom.pp.scale(adata, max_value=10)
    ...     oom.pp.pca(adata, n_comps=50)
    """
    token = _client.set(client)
    try:
        yield client
    finally:
        _client.reset(token)


# -- running one kernel over row ranges ---------------------------------------


def aligned(args: tuple) -> tuple:
    """Return ``args`` with every ndarray C-contiguous and aligned.

    The bindings borrow arrays as slices, and arrays unpickled from
    ``dask.distributed`` frames may sit at unaligned offsets.
    """
    return tuple(np.require(a, requirements="CA") if isinstance(a, np.ndarray) else a
                 for a in args)


def _rows(m: _oom.Matrix, start: int, end: int) -> _oom.Matrix:
    if (start, end) == (0, m.shape[0]):
        return m
    return m.subset(np.arange(start, end, dtype=np.int64), None)


def _run_kernel(m: _oom.Matrix, start: int, end: int, kernel, *args) -> _oom.PassState:
    """Worker task: the pass ``kernel`` (an ``_oom`` function) on rows ``start:end`` of ``m``.

    The rows are folded as one run, into the state the same pass in one
    process makes for them.
    """
    with _oom.CallContext(runs=1):
        return kernel(_rows(m, start, end), *aligned(args))


def run_pass(m: _oom.Matrix, kernel, *args, row_args: tuple[int, ...] = ()) -> _oom.PassState:
    """Run the pass ``kernel`` (an ``_oom`` function returning a ``PassState``) over ``m``.

    In this process, or, inside :func:`distributed`, one task per run of
    rows whose states are combined in row order.  ``args`` at positions
    ``row_args`` hold one entry per row of ``m`` (or are ``None``) and are
    sliced to each task's rows.
    """
    client = _client.get()
    if client is None:
        return kernel(m, *args)
    # Pickled here first: a matrix that cannot be rebuilt elsewhere fails with
    # the core's message, not inside the cluster's serialisation.
    m.to_plan()
    # Scattered once to every worker, so each task carries only a reference
    # (the plan holds per-row/per-gene parameter arrays).
    [matrix] = client.scatter([m], broadcast=True, hash=False)
    futures = []
    for a, b in m.runs(_oom.CallContext().runs):
        part = tuple(
            arg[a:b] if i in row_args and arg is not None else arg for i, arg in enumerate(args)
        )
        futures.append(client.submit(_run_kernel, matrix, a, b, kernel, *part, pure=False))
    return _oom.PassState.combine(client.gather(futures))


# -- the passes ----------------------------------------------------------------


def qc_metrics(x, top: list[int], masks: np.ndarray) -> tuple:
    """``_oom.qc_metrics``: ``(total, n_nonzero, top_cum, mask_sum, col_sum, col_nnz)``.

    On a matrix of counts these are also its :func:`positive_counts`, kept
    for the filters that follow (``anndataoom._core._counts``).
    """
    *out, non_counts, rare_rows, rare_vals = run_pass(x.matrix, _oom.qc_metrics, top,
                                                      masks).finalize()
    x._row_sum = out[0]
    if non_counts == 0:
        x._known_counts = Counts(out[0], out[1], out[4], out[5],
                                 Rare.from_qc(rare_rows, rare_vals, out[5]))
    return tuple(out)


def row_sums(x) -> np.ndarray:
    """Per-row f64 sums of ``x``, reused from an earlier pass over this same matrix if any.

    QC and ``X.sum`` compute exactly these sums (each row added in stored
    order in f64), so ``normalize_total`` after ``calculate_qc_metrics``
    skips a pass over the data.
    """
    if x._row_sum is None:
        x._row_sum = x._stats[0] if x._stats is not None else positive_counts(x)[0]
    return x._row_sum


def positive_counts(x) -> tuple:
    """``_oom.positive_counts``: ``(row_sum, row_pos, col_sum, col_pos)``.

    Known without a pass after QC of counts and the row filters since.
    """
    known = resolved(x._known_counts)
    if known is not None:
        x._known_counts = known
        return known.astuple()
    return run_pass(x.matrix, _oom.positive_counts).finalize()


def count_above(x, threshold: np.ndarray) -> np.ndarray:
    """``_oom.count_above``: per column, the rows above their row's ``threshold``."""
    return run_pass(x.matrix, _oom.count_above, threshold, row_args=(0,)).finalize()


def moments(x, groups=None, n_groups: int = 1, expm1: bool = False, factor=None,
            clip=None, unmapped: bool = False) -> dict:
    """``_oom.moments``: per-group column moments (see its docstring for the keys)."""
    return run_pass(x.matrix, _oom.moments, groups, n_groups, expm1, factor, clip, unmapped,
                    row_args=(0,)).finalize()


def regress_stats(m: _oom.Matrix, design=None, codes=None, ngroups: int = 0) -> tuple:
    """``_oom.regress_stats``: ``(DᵀX, col_min, col_max)`` of ``m`` for a design or group codes."""
    return run_pass(m, _oom.regress_stats, design, codes, ngroups, row_args=(0, 1)).finalize()


def pca(x, n_comps: int, *, zero_center: bool, solver: str, precision: str, seed: int,
        dtype: str) -> dict:
    """``_oom.pca``: ``scores``, ``components``, ``variance``, ``variance_ratio``, ``mean``.

    On a cluster with the Gram solver (``solver="gram"``, or ``"auto"`` up
    to :data:`GRAM_MAX_FEATURES` variables) the workers fold the Gram state
    of their rows, the core combines them in row order and solves the fit
    exactly as in one process (``_oom.pca_from_gram``), and the workers
    project their rows (``_oom.pca_project``).
    """
    n_vars = x.shape[1]
    gram = solver == "gram" or (solver == "auto" and n_vars <= GRAM_MAX_FEATURES)
    if _client.get() is None or not gram:
        return _oom.pca(x.matrix, n_comps, zero_center=zero_center, solver=solver,
                        precision=precision, seed=seed, dtype=dtype)
    state = run_pass(x.matrix, _oom.gram_state, precision)
    fit = _oom.pca_from_gram(state, n_comps, zero_center=zero_center, seed=seed)
    mean = fit["mean"] if zero_center else None
    fit["scores"] = run_pass(x.matrix, _oom.pca_project, fit["components"], mean,
                             dtype).finalize()
    return fit
