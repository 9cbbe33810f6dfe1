"""``umap``: scanpy's ``sc.tl.umap`` with the layout run in Rust on all cores.

The algorithm is umap-learn 0.5's ``simplicial_set_embedding`` on the
neighbors graph: the same ``a``/``b`` curve fit, epoch count, edge pruning,
sampling schedule, gradients and learning-rate decay. Two parts differ so
a million cells finish in minutes:

- the SGD updates every vertex from the previous epoch's positions
  (``crates/oom-core/src/graph/umap.rs``), so it runs in parallel and gives
  the same embedding for a seed on any number of threads;
- the spectral initialisation uses block Lanczos with a fixed budget of
  sparse products (``graph/spectral.rs``) instead of ARPACK/LOBPCG, per
  connected component, placed as umap-learn's multi-component layout does.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import curve_fit
from scipy.sparse.csgraph import connected_components

from anndataoom import _oom
from anndataoom._progress import pass_bars
from anndataoom.tl._graph_check import check_indices

__all__ = ["umap"]

_log = logging.getLogger("anndataoom")

_INITS = ("spectral", "random", "paga")
# Sparse products the spectral solver may spend per component; each costs
# one pass over the graph's edges plus the Lanczos bookkeeping (~0.33 s CPU
# at 1M cells). A coarse init is enough for the SGD: at 1M, 40 products
# reach a residual of 4.3e-3 (60: 2.8e-3) in 15.4 s CPU instead of 21.9 s;
# at 100k, 4.5e-3 (60: 2.7e-3). Neighbour preservation after the layout is
# unchanged (see BENCHMARKS.md).
SPECTRAL_PRODUCTS = 40
SPECTRAL_TOL = 1e-4
# A Ritz residual below this still gives the coarse shape an init needs;
# above it the layout falls back to X_pca.
SPECTRAL_USABLE = 1e-2
# Each dimension has its own compiled SGD kernel (MAX_DIM in graph/umap.rs).
MAX_COMPONENTS = 8


def find_ab_params(spread: float, min_dist: float) -> tuple[float, float]:
    """Fit ``1 / (1 + a·x^(2b))`` to UMAP's target curve, as umap-learn does.

    Parameters
    ----------
    spread
        Scale of the embedded points.
    min_dist
        Distance below which the target membership is 1.

    Returns
    -------
    The fitted ``(a, b)``.
    """
    def curve(x, a, b):
        return 1.0 / (1.0 + a * x ** (2 * b))

    xv = np.linspace(0, spread * 3, 300)
    yv = np.where(xv < min_dist, 1.0, np.exp(-(xv - min_dist) / spread))
    params, _ = curve_fit(curve, xv, yv)
    return params[0], params[1]


def _check_params(min_dist, spread, n_components, maxiter, negative_sample_rate, method):
    for name, value in (("min_dist", min_dist), ("spread", spread)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if spread <= 0:
        raise ValueError(f"spread must be positive, got {spread}")
    if min_dist < 0:
        raise ValueError(f"min_dist must be non-negative, got {min_dist}")
    if min_dist > spread:
        raise ValueError(f"min_dist ({min_dist}) must be less than or equal to spread ({spread})")
    if int(n_components) != n_components or not 1 <= n_components <= MAX_COMPONENTS:
        raise ValueError(f"n_components must be an integer from 1 to {MAX_COMPONENTS}, "
                         f"got {n_components!r}")
    if maxiter is not None and (int(maxiter) != maxiter or maxiter < 1):
        raise ValueError(f"maxiter must be a positive integer or None, got {maxiter!r}")
    if negative_sample_rate <= 0:
        raise ValueError(f"negative_sample_rate must be positive, got {negative_sample_rate}")
    if method != "umap":
        raise ValueError(f"method={method!r} is not supported here; use method='umap' "
                         "(for the GPU, rapids_singlecell.tl.umap)")


def _graph(adata, neighbors_key: str) -> sp.csr_matrix:
    if neighbors_key not in adata.uns:
        raise ValueError(f"Did not find .uns[{neighbors_key!r}]. Run `sc.pp.neighbors` first.")
    key = adata.uns[neighbors_key].get("connectivities_key", "connectivities")
    if key not in adata.obsp:
        raise KeyError(f"adata.obsp[{key!r}] (from .uns[{neighbors_key!r}]) is missing; "
                       "run `sc.pp.neighbors` first")
    check_indices(adata.obsp[key], f"adata.obsp[{key!r}]")
    graph = sp.csr_matrix(adata.obsp[key], dtype=np.float32)
    graph.sum_duplicates()
    if not np.isfinite(graph.data).all() or (graph.data < 0).any():
        raise ValueError(f"adata.obsp[{key!r}] has NaN, infinite or negative weights")
    return graph


def _csr_args(graph: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if graph.shape[0] >= 2**31:
        raise ValueError(f"graphs of 2**31 or more vertices are not supported ({graph.shape[0]:,})")
    # scipy's int32 indices are passed as they are (no copy)
    return (graph.indptr.astype(np.int64), graph.indices.astype(np.int32, copy=False),
            np.ascontiguousarray(graph.data, dtype=np.float32))


def _representation(adata, neighbors_key: str) -> np.ndarray | None:
    """Return the data ``sc.pp.neighbors`` used (for component centroids), if in obsm."""
    params = adata.uns[neighbors_key].get("params", {})
    use_rep = params.get("use_rep", "X_pca")
    if use_rep not in adata.obsm:
        return None
    rep = np.asarray(adata.obsm[use_rep])
    n_pcs = params.get("n_pcs")
    return rep[:, :n_pcs] if n_pcs is not None else rep


def _component_spectral(graph: sp.csr_matrix, dim: int, seed: int) -> tuple[np.ndarray, float]:
    coords, residual, _ = _oom.umap_spectral(*_csr_args(graph), dim, seed, SPECTRAL_TOL,
                                             SPECTRAL_PRODUCTS)
    return coords, residual


def _meta_layout(n_comp, labels, dim, rs, data, metric, metric_kwds) -> np.ndarray:
    """Positions of the components relative to each other (umap-learn's rule)."""
    if n_comp > 2 * dim:
        from umap.spectral import component_layout

        with warnings.catch_warnings():
            # the centroids' affinity matrix is dense; sklearn checks it anyway
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            return component_layout(data, n_comp, labels, dim, rs, metric=metric,
                                    metric_kwds=metric_kwds)
    k = int(np.ceil(n_comp / 2.0))
    base = np.hstack([np.eye(k), np.zeros((k, dim - k))])
    return np.vstack([base, -base])[:n_comp]


def _spectral_init(graph, dim, rs, data, metric, metric_kwds) -> tuple[np.ndarray, float]:
    """Spectral layout of every component, placed as umap-learn's ``multi_component_layout``."""
    n_comp, labels = connected_components(graph, directed=False)
    seed = int(rs.randint(np.iinfo(np.int32).max))
    if n_comp == 1:
        return _component_spectral(graph, dim, seed)
    meta = _meta_layout(n_comp, labels, dim, rs, data, metric, metric_kwds)
    order = np.argsort(labels, kind="stable")
    permuted = graph[order][:, order].tocsr()
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=n_comp))])
    result = np.empty((graph.shape[0], dim), dtype=np.float64)
    worst = 0.0
    for label in range(n_comp):
        start, end = bounds[label], bounds[label + 1]
        dists = np.linalg.norm(meta - meta[label], axis=1)
        data_range = dists[dists > 0].min() / 2.0
        size = end - start
        if size < 2 * dim or size <= dim + 1:
            coords = rs.uniform(-data_range, data_range, size=(size, dim))
        else:
            sub = permuted[start:end, start:end]
            coords, residual = _component_spectral(sub, dim, seed + label)
            worst = max(worst, residual)
            coords *= data_range / np.abs(coords).max()
        result[order[start:end]] = coords + meta[label]
    return result, worst


def _noisy_scale(coords, rs, max_coord=10.0, noise=1e-4) -> np.ndarray:
    coords = (coords * (max_coord / np.abs(coords).max())).astype(np.float32)
    return coords + rs.normal(scale=noise, size=coords.shape).astype(np.float32)


def _given_init(coords, n_obs: int, dim: int, what: str, rs) -> np.ndarray:
    """Check an init array from the user (obsm or numpy); jitter repeated rows as umap-learn."""
    coords = np.asarray(coords, dtype=np.float32)
    if coords.ndim != 2 or coords.shape[0] != n_obs or coords.shape[1] < dim:
        raise ValueError(f"init_pos {what} has shape {coords.shape}; expected ({n_obs}, >= {dim})")
    coords = np.ascontiguousarray(coords[:, :dim])
    if not np.isfinite(coords).all():
        raise ValueError(f"init_pos {what} has NaN or infinite values")
    if np.unique(coords, axis=0).shape[0] < n_obs:
        from sklearn.neighbors import KDTree

        dist, _ = KDTree(coords).query(coords, k=2)
        jitter = rs.normal(scale=0.001 * np.mean(dist[:, 1]), size=coords.shape)
        coords = coords + jitter.astype(np.float32)
    return coords


def _init(adata, init_pos, graph, dim, rs, neighbors_key, random_state) -> np.ndarray:
    n = graph.shape[0]
    if isinstance(init_pos, str) and init_pos in adata.obsm:
        return _given_init(adata.obsm[init_pos], n, dim, f"obsm[{init_pos!r}]", rs)
    if isinstance(init_pos, np.ndarray):
        return _given_init(init_pos, n, dim, "array", rs)
    if init_pos == "random":
        return rs.uniform(low=-10.0, high=10.0, size=(n, dim)).astype(np.float32)
    if init_pos == "paga":
        from scanpy.tools._utils import get_init_pos_from_paga

        coords = get_init_pos_from_paga(adata, random_state=random_state,
                                        neighbors_key=neighbors_key)
        return _given_init(coords, n, dim, "from paga", rs)
    if init_pos != "spectral":
        raise ValueError(f"init_pos={init_pos!r} is neither one of {_INITS}, an obsm key "
                         f"({list(adata.obsm)}) nor an array")
    params = adata.uns[neighbors_key].get("params", {})
    coords, residual = _spectral_init(graph, dim, rs, _representation(adata, neighbors_key),
                                      params.get("metric", "euclidean"),
                                      params.get("metric_kwds", {}))
    if residual > SPECTRAL_USABLE or not np.isfinite(coords).all():
        fallback = "X_pca" if "X_pca" in adata.obsm else "random"
        warnings.warn(f"spectral initialisation did not converge (residual {residual:.2g}); "
                      f"initialising from {fallback}", RuntimeWarning, stacklevel=3)
        return _init(adata, fallback, graph, dim, rs, neighbors_key, random_state)
    return _noisy_scale(coords, rs)


def umap(
    adata,
    *,
    min_dist: float = 0.5,
    spread: float = 1.0,
    n_components: int = 2,
    maxiter: int | None = None,
    alpha: float = 1.0,
    gamma: float = 1.0,
    negative_sample_rate: int = 5,
    init_pos: Any = "spectral",
    random_state: Any = 0,
    a: float | None = None,
    b: float | None = None,
    method: str = "umap",
    key_added: str | None = None,
    neighbors_key: str = "neighbors",
    copy: bool = False,
):
    """Embed the neighborhood graph with UMAP, as :func:`scanpy.tl.umap`.

    Same arguments, defaults and result locations as scanpy; the layout
    runs multithreaded in Rust and is deterministic for a seed whatever the
    thread count (see the module docs for how it differs from umap-learn).

    Parameters
    ----------
    adata
        Annotated data with a neighbors graph (``sc.pp.neighbors`` or
        ``oom.pp.neighbors``).
    min_dist
        Effective minimum distance between embedded points.
    spread
        Effective scale of embedded points.
    n_components
        Dimensions of the embedding.
    maxiter
        Epochs of the optimisation; ``None``: 500 up to 10,000 cells, else 200.
    alpha
        Initial learning rate.
    gamma
        Weight of the negative samples.
    negative_sample_rate
        Negative samples per positive sample.
    init_pos
        ``'spectral'``, ``'random'``, ``'paga'``, an ``obsm`` key (its first
        ``n_components`` columns) or an array.
    random_state
        Seed (int), or a ``numpy.random.RandomState``.
    a, b
        Curve parameters; ``None`` fits them from ``min_dist`` and ``spread``.
    method
        Only ``'umap'``.
    key_added
        Store in ``obsm[key_added]`` / ``uns[key_added]`` instead of
        ``obsm['X_umap']`` / ``uns['umap']``.
    neighbors_key
        Where the graph is described in ``uns``.
    copy
        Return a copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or the copy when ``copy=True``; sets ``obsm['X_umap']``
    (float32) and ``uns['umap']['params']`` (``a``, ``b`` and a non-zero
    ``random_state``).
    """
    from sklearn.utils import check_random_state

    _check_params(min_dist, spread, n_components, maxiter, negative_sample_rate, method)
    graph = _graph(adata, neighbors_key)
    if graph.shape != (adata.n_obs, adata.n_obs):
        raise ValueError(f"the connectivities are {graph.shape}, not n_obs × n_obs ({adata.n_obs})")
    adata = adata.copy() if copy else adata
    key_obsm, key_uns = ("X_umap", "umap") if key_added is None else (key_added, key_added)
    if a is None or b is None:
        a, b = find_ab_params(spread, min_dist)
    params: dict[str, Any] = {"a": a, "b": b}
    if not (isinstance(random_state, int) and random_state == 0):
        params["random_state"] = random_state
    rs = check_random_state(random_state)
    dim = int(n_components)
    t0 = time.perf_counter()
    init = _init(adata, init_pos, graph, dim, rs, neighbors_key, random_state)
    t_init = time.perf_counter() - t0
    span = init.max(axis=0) - init.min(axis=0)
    if (span <= 0).any():
        raise ValueError("the initial embedding is constant along an axis; choose another init_pos")
    init = (10.0 * (init - init.min(axis=0)) / span).astype(np.float32, order="C")
    default_epochs = 500 if graph.shape[0] <= 10000 else 200
    n_epochs = default_epochs if maxiter is None else int(maxiter)
    seed = int(rs.randint(np.iinfo(np.int32).max))
    with pass_bars("umap"):
        emb = _oom.umap_layout(*_csr_args(graph), init, n_epochs,
                               n_epochs if n_epochs > 10 else default_epochs,
                               float(a), float(b), float(gamma), float(alpha),
                               float(negative_sample_rate), seed)
    _log.info("umap: %s initialisation %.1f s, %d epochs %.1f s",
              init_pos if isinstance(init_pos, str) else "array", t_init, n_epochs,
              time.perf_counter() - t0 - t_init)
    adata.uns[key_uns] = {"params": params}
    adata.obsm[key_obsm] = emb
    return adata if copy else None
