"""``neighbors``: the kNN graph and UMAP connectivities (scanpy's ``pp.neighbors``).

The search runs in Rust on all cores (``_oom.knn_graph``): exact brute
force by GEMM blocks up to ``exact_max`` cells, above that an IVF search
(seeded k-means lists, GEMM per list, each list probing its queries'
nearest lists), optionally refined by NN-descent rounds. The connectivities are umap-learn's
fuzzy simplicial set computed in Rust with umap-learn's float types
(``_oom.umap_connectivities``). Results are stored exactly where and how
scanpy stores them, so ``sc.tl.leiden``, ``sc.tl.paga``, ``sc.tl.umap`` and
``sc.pl.umap`` read them unchanged.
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy import sparse

from anndataoom import _oom
from anndataoom._progress import pass_bars
from anndataoom._random import seed_of
from anndataoom.pp._backed import get_array

__all__ = ["KnnTransformer", "neighbors"]

#: scanpy's brute-force (sklearn) route below this many cells (euclidean)
#: gives float64 distances; above it pynndescent gives float32. Same split here.
_SCANPY_BRUTE_MAX = 8192
#: Default size up to which the search is exact.
EXACT_MAX = 20_000


@functools.cache
def _known_metrics() -> frozenset[str]:
    """Metric names scanpy's kNN search accepts (sklearn's, and pynndescent's when installed)."""
    from sklearn.neighbors import VALID_METRICS

    names = set(VALID_METRICS["brute"])
    try:
        from pynndescent.distances import named_distances
    except ImportError:
        pass
    else:
        names |= set(named_distances)
    return frozenset(names)


def _check_rep(x: Any, what: str) -> np.ndarray:
    if sparse.issparse(x):
        raise NotImplementedError(
            f"{what} is sparse; oom.pp.neighbors needs a dense representation such as "
            "X_pca (run oom.pp.pca first), or use sc.pp.neighbors"
        )
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(
            f"{what} must be a 2-D matrix with at least one column, got shape {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise TypeError(f"{what} must be numeric, got dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _representation(adata, use_rep: str | None, n_pcs: int | None) -> tuple[np.ndarray, str]:
    """``X_pca`` (or ``obsm[use_rep]``) as scanpy's ``_choose_representation`` picks it."""
    if use_rep is None and n_pcs == 0:
        use_rep = "X"
    if use_rep is None and adata.n_vars <= 50:  # scanpy's settings.N_PCS: X itself
        use_rep = "X"
    if use_rep is None:
        if "X_pca" not in adata.obsm:
            from anndataoom.pp._pca import pca

            # as scanpy: PCA with default parameters first (streamed for a lazy X)
            pca(adata, n_comps=n_pcs if n_pcs is not None else 50)
        use_rep = "X_pca"
    if use_rep == "X":
        if get_array(adata) is not None:  # lazy X: never load it whole behind the user's back
            from anndataoom.exceptions import InMemoryRequiredError

            raise InMemoryRequiredError(
                "the graph would be computed on X itself (use_rep='X', or at most 50 "
                "variables as scanpy does), which loads the lazy X into memory; run "
                "oom.pp.pca and use X_pca, or call adata.to_memory() first"
            )
        x = adata.X
    elif use_rep in adata.obsm:
        x = adata.obsm[use_rep]
    else:
        raise ValueError(
            f"Did not find {use_rep!r} in `.obsm.keys()`. You need to compute it first.")
    if n_pcs is not None and use_rep != "X":
        if n_pcs > x.shape[1]:
            raise ValueError(
                f"{use_rep} has {x.shape[1]} dimensions, fewer than n_pcs={n_pcs}; "
                "lower n_pcs or recompute the representation"
            )
        x = x[:, :n_pcs]
    return _check_rep(x, f"the representation {use_rep!r}"), use_rep


def _check_n_neighbors(n_neighbors: Any, n_obs: int) -> int:
    if not isinstance(n_neighbors, numbers.Integral) or isinstance(n_neighbors, bool):
        raise TypeError(f"n_neighbors must be an int, not {type(n_neighbors).__name__}")
    if n_neighbors < 2:
        raise ValueError(
            "n_neighbors must be at least 2 (the cell itself and one neighbour), "
            f"got {n_neighbors}"
        )
    if n_neighbors > n_obs >= 2:
        # scanpy's adjustment for very small data
        adjusted = 1 + n_obs // 2
        warnings.warn(f"n_obs too small: adjusting to `n_neighbors = {adjusted}` "
                      f"(asked for {n_neighbors}, there are {n_obs} cells)",
                      UserWarning, stacklevel=3)
        return adjusted
    if n_neighbors > n_obs:
        raise ValueError(
            f"n_neighbors ({n_neighbors}) is larger than the number of cells ({n_obs})"
        )
    return int(n_neighbors)


def _search(x: np.ndarray, k: int, seed: int, **opts: Any) -> tuple[np.ndarray, np.ndarray]:
    with pass_bars("neighbors"):
        return _oom.knn_graph(x, k, seed=seed, **opts)


def _distances_csr(
    ind: np.ndarray, dist: np.ndarray, *, keep_self: bool, dtype
) -> sparse.csr_matrix:
    """Scanpy's distance CSR: each row its neighbours in distance order."""
    if not keep_self:
        ind, dist = ind[:, 1:], dist[:, 1:]
    n, k = ind.shape
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64 if n * k >= 2**31 else np.int32)
    return sparse.csr_matrix(
        (dist.astype(dtype).ravel(), ind.ravel(), indptr), shape=(n, n)
    )


def _connectivities(ind: np.ndarray, dist: np.ndarray) -> sparse.csr_matrix:
    with pass_bars("connectivities"):
        d32 = np.ascontiguousarray(dist, dtype=np.float32)
        indptr, indices, data = _oom.umap_connectivities(ind, d32)
    n = ind.shape[0]
    if indptr[-1] < 2**31:
        indptr = indptr.astype(np.int32)
    return sparse.csr_matrix((data, indices, indptr), shape=(n, n))


def neighbors(  # noqa: PLR0913
    adata,
    n_neighbors: int = 15,
    n_pcs: int | None = None,
    *,
    use_rep: str | None = None,
    knn: bool = True,
    method: str = "umap",
    transformer: Any = None,
    metric: str = "euclidean",
    metric_kwds: Mapping[str, Any] = MappingProxyType({}),
    random_state: Any = 0,
    key_added: str | None = None,
    copy: bool = False,
):
    """Compute a neighbourhood graph of observations (scanpy's ``pp.neighbors``).

    The k nearest neighbours in ``X_pca`` (or ``obsm[use_rep]``) are found in
    Rust on all cores: exactly (GEMM brute force) up to 20,000 cells, above
    that by an inverted-file search (seeded k-means lists compared by GEMM,
    each list probing the lists nearest to its cells); recall@15 ≥ 0.95
    on atlas-like PCs (see BENCHMARKS / ``bench/knn.py``; tune with
    :class:`KnnTransformer`). The result is deterministic for a seed, whatever the
    number of threads. Connectivities are umap-learn's fuzzy simplicial set,
    computed with umap-learn's arithmetic.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` or in-memory :class:`~anndata.AnnData`;
        only the representation (``obsm``) is read, never a lazy ``X``.
    n_neighbors
        Neighbours per cell, the cell itself included (2 ≤ n_neighbors ≤ n_obs).
    n_pcs
        Use the first ``n_pcs`` columns of the representation.
    use_rep
        Key in ``obsm`` (default ``X_pca``; computed with :func:`anndataoom.pp.pca`
        first when missing, as scanpy does). ``'X'`` uses an in-memory ``X``.
    knn
        Only ``True`` (a hard kNN graph) is supported here.
    method
        Only ``'umap'`` connectivities; use ``sc.pp.neighbors(method='gauss')``
        for the gaussian kernel.
    transformer
        A kNN transformer instance or name: the call is handed to
        ``sc.pp.neighbors(adata, transformer=...)`` unchanged (for example
        with :class:`anndataoom.pp.KnnTransformer`).
    metric
        Only ``'euclidean'``; other metrics: ``sc.pp.neighbors(metric=...)``.
    metric_kwds
        Must be empty (no euclidean options exist).
    random_state
        Seed (int) of the k-means sample on the large-data path.
    key_added
        Store under ``uns[key_added]`` and ``obsp[key_added + '_distances' /
        '_connectivities']`` instead of the defaults.
    copy
        Work on and return a copy.

    Returns
    -------
    ``None`` or the copy. Sets, exactly as scanpy:
    ``obsp['distances']`` (CSR, ``n_neighbors − 1`` neighbours per row in
    distance order, float64 below 8,192 cells like sklearn's route, float32
    above like pynndescent's), ``obsp['connectivities']`` (symmetric CSR,
    float32) and ``uns['neighbors']`` (keys and ``params``).

    Examples
    --------
    >>> import anndataoom as oom
    >>> from anndataoom.datasets import pbmc3k
    >>> a = oom.read(pbmc3k())  # the path of the cached PBMC 3k counts
    >>> oom.pp.normalize_total(a, target_sum=1e4)
    >>> oom.pp.log1p(a)
    >>> oom.pp.pca(a)
    >>> oom.pp.neighbors(a, n_neighbors=15)
    >>> sorted(a.obsp.keys())
    ['connectivities', 'distances']
    """
    if transformer is not None:
        import scanpy as sc

        return sc.pp.neighbors(
            adata, n_neighbors, n_pcs, use_rep=use_rep, knn=knn, method=method,
            transformer=transformer, metric=metric, metric_kwds=metric_kwds,
            random_state=random_state, key_added=key_added, copy=copy,
        )
    if method not in ("umap", "gauss"):
        raise ValueError(f"`method` needs to be one of ['umap', 'gauss'], got {method!r}")
    if isinstance(metric, str) and metric not in _known_metrics():
        raise ValueError(f"unknown metric {metric!r}; scanpy's kNN search knows "
                         f"{', '.join(sorted(_known_metrics()))}")
    if method != "umap":
        raise NotImplementedError(
            f"method={method!r} is not supported by oom.pp.neighbors (only 'umap'); "
            f"use sc.pp.neighbors(adata, method={method!r})"
        )
    if not knn:
        raise NotImplementedError(
            "knn=False (dense gaussian kernel) is not supported; use sc.pp.neighbors"
        )
    if metric != "euclidean" or metric_kwds:
        raise NotImplementedError(
            f"metric={metric!r} with metric_kwds={dict(metric_kwds)} is not supported by "
            "oom.pp.neighbors (euclidean only); use sc.pp.neighbors(adata, metric=...)"
        )
    seed = seed_of(random_state)
    n_neighbors = _check_n_neighbors(n_neighbors, adata.n_obs)
    adata = adata.copy() if copy else adata
    x, _ = _representation(adata, use_rep, n_pcs)
    ind, dist = _search(x, n_neighbors, seed, exact_max=EXACT_MAX)
    dtype = np.float64 if adata.n_obs < _SCANPY_BRUTE_MAX else np.float32
    conns = _connectivities(ind, dist)
    dists = _distances_csr(ind, dist, keep_self=False, dtype=dtype)
    del ind, dist
    if key_added is None:
        key_added, conns_key, dists_key = "neighbors", "connectivities", "distances"
    else:
        conns_key, dists_key = f"{key_added}_connectivities", f"{key_added}_distances"
    params: dict[str, Any] = dict(
        n_neighbors=n_neighbors, method=method, random_state=random_state, metric=metric
    )
    if use_rep is not None:
        params["use_rep"] = use_rep
    if n_pcs is not None:
        params["n_pcs"] = n_pcs
    adata.uns[key_added] = dict(
        connectivities_key=conns_key, distances_key=dists_key, params=params
    )
    adata.obsp[dists_key] = dists
    adata.obsp[conns_key] = conns
    return adata if copy else None


class KnnTransformer:
    """Our kNN search with scikit-learn's ``KNeighborsTransformer`` interface.

    Pass an instance to scanpy to keep scanpy's own neighbours code and use
    our search: ``sc.pp.neighbors(adata, transformer=oom.pp.KnnTransformer())``
    (scanpy then reads ``n_neighbors`` from :meth:`get_params`).
    ``fit_transform(X)`` returns the sparse distance graph in sklearn's
    layout (mode ``'distance'``): ``n_neighbors + 1`` entries per row, the
    point itself first at an explicit distance 0, then its neighbours in
    distance order (float32, like pynndescent's transformer).

    Parameters
    ----------
    n_neighbors
        Neighbours per point, besides the point itself.
    metric
        Only ``'euclidean'``.
    random_state
        Seed of the k-means sample (large-data path).
    exact_max
        Up to this many points the search is exact.
    nlist
        IVF lists (``None``: one per 256 points).
    nprobe
        Lists probed for a list of queries: those nearest to its centroid.
    qprobe
        Also probed: the ``qprobe`` lists nearest to each of its queries.
    refine
        NN-descent refinement rounds after the IVF search (each about as
        costly as the search; raises recall, e.g. 0.97 → 0.99 at 100k).
    """

    def __init__(
        self,
        n_neighbors: int = 15,
        *,
        metric: str = "euclidean",
        random_state: int | None = 0,
        exact_max: int = EXACT_MAX,
        nlist: int | None = None,
        nprobe: int = 8,
        qprobe: int = 8,
        refine: int = 0,
    ):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.random_state = random_state
        self.exact_max = exact_max
        self.nlist = nlist
        self.nprobe = nprobe
        self.qprobe = qprobe
        self.refine = refine

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters (sklearn's estimator protocol)."""
        return dict(
            n_neighbors=self.n_neighbors, metric=self.metric, random_state=self.random_state,
            exact_max=self.exact_max, nlist=self.nlist, nprobe=self.nprobe, qprobe=self.qprobe,
            refine=self.refine,
        )

    def set_params(self, **params: Any) -> KnnTransformer:
        """Change constructor parameters (sklearn's estimator protocol)."""
        for key, value in params.items():
            if key not in self.get_params():
                raise ValueError(f"invalid parameter {key!r} for KnnTransformer")
            setattr(self, key, value)
        return self

    def fit(self, X: Any, y: Any = None) -> KnnTransformer:
        """Remember the points whose neighbour graph :meth:`transform` returns."""
        if self.metric != "euclidean":
            raise NotImplementedError(
                f"metric={self.metric!r}: KnnTransformer is euclidean only; use "
                "sklearn.neighbors.KNeighborsTransformer or pynndescent's transformer"
            )
        self.fit_X_ = _check_rep(X, "X")
        self.n_samples_fit_ = self.fit_X_.shape[0]
        return self

    def transform(self, X: Any) -> sparse.csr_matrix:
        """Distance graph of the fitted points (``X`` must be the data given to :meth:`fit`)."""
        x = _check_rep(X, "X")
        if x.shape != self.fit_X_.shape or not np.array_equal(x, self.fit_X_):
            raise NotImplementedError(
                "KnnTransformer answers only for the points it was fitted on; for new query "
                "points use sklearn.neighbors.KNeighborsTransformer"
            )
        k = _check_n_neighbors(self.n_neighbors, x.shape[0] - 1) + 1
        ind, dist = _search(
            x, k, seed_of(self.random_state), exact_max=self.exact_max,
            nlist=self.nlist or 0, nprobe=self.nprobe, qprobe=self.qprobe, refine=self.refine,
        )
        return _distances_csr(ind, dist, keep_self=True, dtype=np.float32)

    def fit_transform(self, X: Any, y: Any = None) -> sparse.csr_matrix:
        """:meth:`fit` then :meth:`transform` on the same points."""
        return self.fit(X).transform(X)
