"""``scrublet`` / ``scrublet_simulate_doublets``: scanpy's doublet detection, X on disk.

scanpy's ``pp.scrublet`` copies the whole object, keeps genes seen in at
least 3 cells and cells with at least 3 genes, normalises to the median
total, log-transforms a copy, selects highly variable genes (``seurat``
flavor) and keeps them; it then simulates doublets from the raw counts of
those cells × genes and scores observed and simulated transcriptomes with
a kNN classifier in PCA space.

Here the steps up to the HVG selection run lazily with :mod:`anndataoom.pp`
(streamed passes; nothing loads all of X).  Only the raw counts of the kept
cells × HVGs are read (a sparse matrix of the size scrublet itself works
on), normalised in memory exactly as scanpy does, and scanpy's own doublet
simulation and calling run on that small in-memory AnnData, so the results
are scanpy's.  Those later steps are dense over (observed + simulated)
cells × HVGs: that size is checked against ``ANNDATAOOM_MAX_DENSE_BYTES``
for every batch before anything is read.

``scrublet_simulate_doublets`` on a lazy object draws scanpy's pairs with
the same random calls, reads only the rows drawn and lets scanpy add them.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

from anndataoom._core._guard import InMemoryRequiredError, is_oom, max_dense_bytes, size_text
from anndataoom._progress import with_pass_bars
from anndataoom.pp._backed import _rep

__all__ = ["scrublet", "scrublet_simulate_doublets"]

_BATCH_HINT = (
    "(scrublet's peak memory is a few times this: z-scoring, PCA and the kNN search all "
    "hold dense copies.) Run it per sample with batch_key=<an obs column> (each batch is "
    "then scored on its own, as scanpy does), or raise ANNDATAOOM_MAX_DENSE_BYTES if the "
    "memory is there."
)


def _lazy_x(adata):
    """Return the lazy array behind ``adata.X`` of an AnnDataOOM, else ``None``."""
    if not is_oom(adata):
        return None
    x = adata.X
    return x if hasattr(x, "matrix") else None


def _refuse_above_cap(nbytes: float, what: str, hint: str) -> None:
    """Raise :class:`InMemoryRequiredError` when ``nbytes`` exceeds the cap."""
    limit = max_dense_bytes()
    if nbytes > limit:
        raise InMemoryRequiredError(
            f"{what} needs about {size_text(nbytes)} in memory, more than "
            f"ANNDATAOOM_MAX_DENSE_BYTES={size_text(limit)}; refused before reading. {hint}"
        )


def _scrublet_bytes(n_obs: int, n_sim: int, n_vars: int, nnz, mean_center: bool) -> int:
    """Memory of scrublet's scaled (observed + simulated) × genes matrix.

    With ``mean_center`` it is dense float64 (z-scoring and PCA densify it);
    without, it stays sparse: ``nnz()`` observed entries, about twice as many
    per simulated doublet, 8 bytes of value and 4 of index each.
    """
    if mean_center:
        return (n_obs + n_sim) * n_vars * 8
    per_cell = nnz() / max(n_obs, 1)
    return int((n_obs + 2 * n_sim) * per_cell * 12)


def _sim_count(n_obs: int, ratio: float) -> int:
    return max(int(n_obs * ratio), 0)


@dataclass
class _Batch:
    """What the lazy steps leave for one batch: the kept cells × HVGs, still on disk."""

    obs: pd.DataFrame
    var: pd.DataFrame
    counts: object  # lazy raw counts, kept cells × HVGs
    factors: np.ndarray  # normalize_total's size factors of the kept cells


def _prepare(ad_obs, name: str) -> _Batch:
    """Do scanpy's steps before the doublet simulation lazily on ``ad_obs`` (in place)."""
    from anndataoom._core import AnnDataOOM
    from anndataoom.pp import (
        filter_cells,
        filter_genes,
        highly_variable_genes,
        log1p,
        normalize_total,
    )

    n_obs = ad_obs.n_obs
    filter_genes(ad_obs, min_cells=3)
    filter_cells(ad_obs, min_genes=3)
    if 0 in ad_obs.shape:
        raise ValueError(
            f"scrublet{name}: no cells with ≥ 3 genes expressed in ≥ 3 of its {n_obs:,} cells "
            "are left to score (scanpy fails here too). Give a batch_key with larger batches, "
            "or leave such cells out.")
    counts = ad_obs.X
    norm = normalize_total(ad_obs, inplace=False)
    # scanpy: normalise X, log1p a copy of it, HVGs on that copy.
    work = AnnDataOOM(X=norm["X"], obs=ad_obs.obs[[]], var=ad_obs.var[[]])
    log1p(work)
    highly_variable_genes(work)
    hv = np.flatnonzero(work.var["highly_variable"].to_numpy(dtype=bool)).astype(np.int64)
    return _Batch(obs=ad_obs.obs, var=ad_obs.var.iloc[hv], counts=counts._subset(None, hv),
                  factors=np.asarray(norm["norm_factor"]))


def _in_memory(b: _Batch) -> anndata.AnnData:
    """Build the object scanpy holds after its HVG subset: normalised X, raw counts layer."""
    raw = b.counts.to_memory()
    if sp.issparse(raw):
        raw = sp.csr_matrix(raw)
        raw.sort_indices()
    x = raw.astype(np.float32) if np.issubdtype(raw.dtype, np.integer) else raw.copy()
    div = b.factors + (b.factors == 0)  # as scanpy: a zero total divides by 1
    if sp.issparse(x):
        x.data = np.true_divide(x.data, np.repeat(div, np.diff(x.indptr)))
    else:
        x = np.true_divide(x, div[:, None])
    return anndata.AnnData(X=x, obs=b.obs.copy(), var=b.var.copy(), layers={"raw": raw},
                           uns={"log1p": {"base": None}, "hvg": {"flavor": "seurat"}})


def _run_in_memory(ad_obs: anndata.AnnData, ad_sim: anndata.AnnData | None, *,
                   sim_doublet_ratio, synthetic_doublet_umi_subsampling, log_transform,
                   random_state, call_kw) -> dict:
    """Run the rest of scanpy's ``_run_scrublet`` (scanpy's own code) in memory."""
    from scanpy import preprocessing as spp
    from scanpy.preprocessing._scrublet import _scrublet_call_doublets
    from scanpy.preprocessing._scrublet import scrublet_simulate_doublets as sc_simulate

    if ad_sim is None:
        ad_sim = sc_simulate(ad_obs, layer="raw", sim_doublet_ratio=sim_doublet_ratio,
                             synthetic_doublet_umi_subsampling=synthetic_doublet_umi_subsampling,
                             random_seed=random_state)
        del ad_obs.layers["raw"]
        if log_transform:
            spp.log1p(ad_obs)
            spp.log1p(ad_sim)
        spp.normalize_total(ad_obs, target_sum=1e6)
        spp.normalize_total(ad_sim, target_sum=1e6)
    ad_obs = _scrublet_call_doublets(adata_obs=ad_obs, adata_sim=ad_sim,
                                     random_state=random_state, **call_kw)
    return {"obs": ad_obs.obs, "uns": ad_obs.uns["scrublet"]}


def _sim_in_memory(adata_sim):
    """``adata_sim`` in memory (an AnnDataOOM is loaded, within the cap)."""
    if not is_oom(adata_sim):
        return adata_sim
    x = adata_sim.X
    if hasattr(x, "matrix"):
        nbytes = (x.nnz * (x.dtype.itemsize + 4)) if x.is_sparse else x.size * x.dtype.itemsize
        _refuse_above_cap(nbytes, f"loading adata_sim ({x.shape[0]:,} × {x.shape[1]:,})",
                          "adata_sim should hold the simulated doublets of the HVGs only.")
    return adata_sim.to_memory()


@with_pass_bars("scrublet")
def scrublet(  # noqa: PLR0913
    adata,
    adata_sim=None,
    *,
    batch_key: str | None = None,
    sim_doublet_ratio: float = 2.0,
    expected_doublet_rate: float = 0.05,
    stdev_doublet_rate: float = 0.02,
    synthetic_doublet_umi_subsampling: float = 1.0,
    knn_dist_metric="euclidean",
    normalize_variance: bool = True,
    log_transform: bool = False,
    mean_center: bool = True,
    n_prin_comps: int = 30,
    use_approx_neighbors: bool | None = None,
    get_doublet_neighbor_parents: bool = False,
    n_neighbors: int | None = None,
    threshold: float | None = None,
    verbose: bool = True,
    copy: bool = False,
    random_state=0,
):
    """Predict doublets using Scrublet (scanpy's ``pp.scrublet``), X staying on disk.

    The filtering, normalisation, log transform and HVG selection scanpy
    does first run lazily; only the raw counts of the kept cells × HVGs are
    read, and scanpy's own simulation and kNN doublet calling run on them,
    so scores, calls and ``uns`` equal scanpy's for the same ``random_state``.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` with raw counts in ``X`` (or an
        in-memory :class:`~anndata.AnnData`, handed over to scanpy).  With
        ``adata_sim``, the observed transcriptomes processed like it (then
        its X, cells × HVGs, is read into memory).
    adata_sim
        Simulated doublets from :func:`scrublet_simulate_doublets` (in
        memory, or an AnnDataOOM that is loaded).
    batch_key
        ``obs`` column: run scrublet on each batch separately.
    sim_doublet_ratio
        Number of doublets to simulate relative to the observed cells.
    expected_doublet_rate, stdev_doublet_rate
        Expected doublet rate of the experiment and its uncertainty.
    synthetic_doublet_umi_subsampling
        Rate for sampling UMIs of the synthetic doublets (1 = plain sums).
    knn_dist_metric
        Distance metric of the nearest-neighbour search.
    normalize_variance, mean_center, log_transform
        Scrublet's scaling of the genes and optional ``log1p`` before PCA.
    n_prin_comps
        Number of principal components for the kNN graph.
    use_approx_neighbors
        Use an approximate nearest-neighbour method.
    get_doublet_neighbor_parents
        Also return the parents of each cell's doublet neighbours.
    n_neighbors
        Neighbours of the kNN graph (default ``round(0.5 * sqrt(n_obs))``).
    threshold
        Doublet score threshold; ``None`` finds it automatically (needs
        scikit-image).
    verbose
        Log progress.
    copy
        Return a (lazy) copy with the results; otherwise write into ``adata``.
    random_state
        Seed (or ``RandomState``) of the simulation, PCA and neighbours.

    Returns
    -------
    ``None`` or the copy.  Sets ``obs['doublet_score']``,
    ``obs['predicted_doublet']`` and ``uns['scrublet']``
    (``doublet_scores_sim``, ``doublet_parents``, ``parameters``,
    ``threshold``; with ``batch_key`` one such entry per batch under
    ``uns['scrublet']['batches']`` plus ``batched_by``, and ``obs``
    replaced as scanpy does).

    Raises
    ------
    InMemoryRequiredError
        When scrublet's dense (observed + simulated) × HVG matrix of one
        batch would exceed ``ANNDATAOOM_MAX_DENSE_BYTES``; nothing is
        changed.
    """
    call_kw = dict(
        n_neighbors=n_neighbors, expected_doublet_rate=expected_doublet_rate,
        stdev_doublet_rate=stdev_doublet_rate, mean_center=mean_center,
        normalize_variance=normalize_variance, n_prin_comps=n_prin_comps,
        use_approx_neighbors=use_approx_neighbors, knn_dist_metric=knn_dist_metric,
        get_doublet_neighbor_parents=get_doublet_neighbor_parents, threshold=threshold,
        verbose=verbose)
    x = _lazy_x(adata)
    if x is None:
        import scanpy as sc

        if adata_sim is not None:
            adata_sim = _sim_in_memory(adata_sim)
        kw = dict(batch_key=batch_key, sim_doublet_ratio=sim_doublet_ratio,
                  synthetic_doublet_umi_subsampling=synthetic_doublet_umi_subsampling,
                  log_transform=log_transform, random_state=random_state, **call_kw)
        if not is_oom(adata):
            return sc.pp.scrublet(adata, adata_sim, copy=copy, **kw)
        # An AnnDataOOM whose X is in memory: scanpy on a plain AnnData, results copied.
        done = sc.pp.scrublet(anndata.AnnData(X=adata.X, obs=adata.obs.copy(),
                                              var=adata.var.copy()), adata_sim, copy=True, **kw)
        adata = adata.copy() if copy else adata
        if batch_key is None:
            for k in ("doublet_score", "predicted_doublet"):
                adata.obs[k] = done.obs[k]
        else:
            adata.obs = done.obs
        adata.uns["scrublet"] = done.uns["scrublet"]
        return adata if copy else None
    if threshold is None and not find_spec("skimage"):
        raise ValueError("threshold is None and thus scrublet requires skimage, "
                         "but skimage is not installed.")
    if batch_key is not None and batch_key not in adata.obs.columns:
        raise ValueError(
            "`batch_key` must be a column of .obs in the input AnnData object,"
            f"but {batch_key!r} is not in {adata.obs.keys()!r}.")
    from scanpy import logging as logg

    from anndataoom._core import AnnDataOOM

    start = logg.info("Running Scrublet")
    base = AnnDataOOM(X=x.copy(), obs=adata.obs.copy(), var=adata.var.copy())
    if batch_key is None:
        batches, groups = None, [base]
    else:
        batches = np.unique(adata.obs[batch_key])
        col = base.obs[batch_key]
        groups = [base[(col == b).to_numpy(dtype=bool)] for b in batches]
    names = [""] if batches is None else [f" of batch {b!r}" for b in batches]
    layout = "dense float64" if mean_center else "sparse"

    # Everything lazy first, and every size checked, before reading any values.
    if adata_sim is None:
        prepared = [_prepare(g, name) for g, name in zip(groups, names, strict=True)]
        for b, name in zip(prepared, names, strict=True):
            n_obs, n_hvg = b.counts.shape
            n_sim = _sim_count(n_obs, sim_doublet_ratio)
            nbytes = _scrublet_bytes(n_obs, n_sim, n_hvg, lambda b=b: b.counts.nnz, mean_center)
            _refuse_above_cap(
                nbytes, f"scrublet{name} on {n_obs:,} observed + {n_sim:,} simulated cells "
                f"× {n_hvg:,} highly variable genes ({layout})",
                _BATCH_HINT)
        objs = (_in_memory(b) for b in prepared)
        sim = None
    else:
        sim = _sim_in_memory(adata_sim)
        for g, name in zip(groups, names, strict=True):
            gx = g.X
            nbytes = _scrublet_bytes(g.n_obs, sim.n_obs, g.n_vars, lambda gx=gx: gx.nnz,
                                     mean_center)
            _refuse_above_cap(
                nbytes, f"scrublet{name} on {g.n_obs:,} observed + {sim.n_obs:,} simulated "
                f"cells × {g.n_vars:,} genes ({layout})", _BATCH_HINT)
        objs = (anndata.AnnData(X=g.X.to_memory(), obs=g.obs.copy(), var=g.var.copy())
                for g in groups)
    scrubbed = [
        _run_in_memory(o, sim, sim_doublet_ratio=sim_doublet_ratio,
                       synthetic_doublet_umi_subsampling=synthetic_doublet_umi_subsampling,
                       log_transform=log_transform, random_state=random_state,
                       call_kw=call_kw)
        for o in objs
    ]

    if copy:
        adata = adata.copy()
    if batches is not None:
        scrubbed_obs = pd.concat([s["obs"] for s in scrubbed])
        adata.obs = scrubbed_obs.loc[adata.obs_names.values]
        adata.uns["scrublet"] = {
            "batches": dict(zip(batches, [s["uns"] for s in scrubbed], strict=True)),
            "batched_by": batch_key,
        }
    else:
        adata.obs["doublet_score"] = scrubbed[0]["obs"]["doublet_score"]
        adata.obs["predicted_doublet"] = scrubbed[0]["obs"]["predicted_doublet"]
        adata.uns["scrublet"] = scrubbed[0]["uns"]
    logg.info("    Scrublet finished", time=start)
    return adata if copy else None


def _rows_in_place(block, rows: np.ndarray, n_obs: int, dtype):
    """Return a CSR matrix of ``n_obs`` rows: ``block``'s rows at ``rows``, others empty."""
    sub = sp.csr_matrix(block, dtype=dtype)
    per_row = np.zeros(n_obs, dtype=np.int64)
    per_row[rows] = np.diff(sub.indptr)
    indptr = np.concatenate([[0], np.cumsum(per_row)])
    return sp.csr_matrix((sub.data, sub.indices, indptr), shape=(n_obs, sub.shape[1]))


@with_pass_bars("scrublet_simulate_doublets")
def scrublet_simulate_doublets(
    adata,
    *,
    layer: str | None = None,
    sim_doublet_ratio: float = 2.0,
    synthetic_doublet_umi_subsampling: float = 1.0,
    random_seed=0,
) -> anndata.AnnData:
    """Simulate doublets by adding the counts of random pairs of cells (scanpy's).

    On an :class:`~anndataoom.AnnDataOOM` the pairs are drawn with the same
    random calls as scanpy, only the rows drawn are read from the lazy
    matrix, and scanpy adds them; the result equals scanpy's.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` (or an in-memory AnnData, handed
        over to scanpy), typically cells × highly variable genes.
    layer
        Layer holding the raw counts (``None``: ``X``).
    sim_doublet_ratio
        Number of doublets to simulate relative to the number of cells.
    synthetic_doublet_umi_subsampling
        Rate for sampling UMIs of the doublets (1 = plain sums).
    random_seed
        Seed (or ``RandomState``) of the pair draws.

    Returns
    -------
    An in-memory :class:`~anndata.AnnData` with the doublets in ``X``,
    ``obs['n_counts']``, ``obsm['doublet_parents']`` (row positions of the
    two parents) and ``uns['scrublet']['parameters']``.

    Raises
    ------
    InMemoryRequiredError
        When the rows read and the doublets would exceed
        ``ANNDATAOOM_MAX_DENSE_BYTES``.
    """
    import scanpy as sc

    kw = dict(layer=layer, sim_doublet_ratio=sim_doublet_ratio,
              synthetic_doublet_umi_subsampling=synthetic_doublet_umi_subsampling,
              random_seed=random_seed)
    if not is_oom(adata):
        return sc.pp.scrublet_simulate_doublets(adata, **kw)
    x = _rep(adata, layer)
    kw["layer"] = None
    if not hasattr(x, "matrix"):  # an in-memory layer of an AnnDataOOM
        return sc.pp.scrublet_simulate_doublets(anndata.AnnData(X=x), **kw)
    from scanpy.preprocessing._utils import sample_comb
    from sklearn.utils import check_random_state

    n_obs, n_vars = x.shape
    n_sim = int(n_obs * sim_doublet_ratio)
    # Draw scanpy's pairs on a copy of the generator: scanpy draws them again below.
    probe = np.random.RandomState()
    probe.set_state(check_random_state(random_seed).get_state())
    pairs = sample_comb((n_obs, n_obs), n_sim, random_state=probe)
    rows = np.unique(pairs).astype(np.int64)
    what = f"simulating {n_sim:,} doublets from {rows.size:,} rows × {n_vars:,} genes"
    hint = ("Simulate from the cells × highly variable genes only (as oom.pp.scrublet does), "
            "or per batch of cells.")
    item = x.dtype.itemsize
    per_row = x.nnz / max(n_obs, 1) * (item + 4) if x.is_sparse else n_vars * item
    _refuse_above_cap(rows.size * per_row, what, hint)
    if rows.size:
        block = x._subset(rows, None).to_memory()
    else:
        block = sp.csr_matrix((0, n_vars), dtype=x.dtype)
    counts = _rows_in_place(block, rows, n_obs, x.dtype)
    # scanpy sums the two parents' sparse rows (and keeps a copy): about four
    # rows' worth of stored values per doublet, next to the rows read.
    per_doublet = 4 * counts.nnz / max(rows.size, 1) * (item + 4)
    _refuse_above_cap(counts.data.nbytes + counts.indices.nbytes + n_sim * per_doublet,
                      what, hint)
    return sc.pp.scrublet_simulate_doublets(anndata.AnnData(X=counts), **kw)
