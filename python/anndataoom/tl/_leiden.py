"""Leiden clustering of the neighbourhood graph, in Rust.

``sc.tl.leiden(flavor="igraph")`` spends most of its time and memory
turning the scipy graph into an igraph graph (a Python list of every edge:
80–100 s and ~8 GB at 1M cells). Here the CSR arrays of ``obsp`` go to the
Rust core as they are, which runs the same algorithm as igraph's
``community_leiden`` (modularity, undirected graph, β = 0.01) and writes
the result where scanpy writes it.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from natsort import natsorted

from anndataoom import _oom
from anndataoom._random import seed_of
from anndataoom.tl._graph_check import check_indices

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anndata import AnnData

_ROUTE = "use scanpy's sc.tl.leiden for this"
_OBJECTIVES = {"modularity": "modularity", "cpm": "cpm"}


def leiden(
    adata: AnnData,
    resolution: float = 1,
    *,
    restrict_to: tuple[str, Sequence[str]] | None = None,
    random_state: int | None = 0,
    key_added: str = "leiden",
    adjacency: Any = None,
    directed: bool | None = None,
    use_weights: bool = True,
    n_iterations: int = 2,
    partition_type: Any = None,
    neighbors_key: str | None = None,
    obsp: str | None = None,
    copy: bool = False,
    flavor: Literal["igraph"] = "igraph",
    **clustering_args: Any,
) -> AnnData | None:
    """Cluster cells with the Leiden algorithm (Traag, Waltman & van Eck 2019).

    Same arguments and result locations as :func:`scanpy.tl.leiden` with
    ``flavor="igraph"``: the graph is undirected (every stored entry of the
    adjacency is an edge, so an asymmetric matrix counts as A + Aᵀ), the
    objective is modularity with resolution γ, and the refinement's
    randomness is igraph's ``beta=0.01``. The clustering runs in Rust
    without the GIL and reads the CSR arrays of the graph without copying
    them; Ctrl-C stops it.

    Parameters
    ----------
    adata
        The annotated data matrix (an :class:`~anndataoom.AnnDataOOM` or an
        in-memory AnnData) with a neighbourhood graph.
    resolution
        Resolution γ of the modularity (or CPM): higher gives more clusters.
    restrict_to
        Cluster only the cells of these categories, ``(obs_key, categories)``;
        labels become ``"<categories>,<cluster>"`` as in scanpy.
    random_state
        Seed (an int; ``None`` means 0). The same seed gives the same labels
        whatever the number of threads.
    key_added
        ``adata.obs`` key of the labels (``"leiden_R"`` with ``restrict_to``
        when left at ``"leiden"``).
    adjacency
        Sparse adjacency matrix; defaults to the neighbors connectivities.
    directed
        Only ``None``/``False`` (an undirected graph, as igraph's flavor).
    use_weights
        Use the edge weights (``False``: every edge has weight 1).
    n_iterations
        Leiden iterations; a negative value iterates until no node moves.
        Default 2, scanpy's announced default for ``flavor="igraph"``
        (its current default -1 belongs to the leidenalg flavor).
    partition_type
        Not supported (a leidenalg class); must be ``None``.
    neighbors_key
        Take ``obsp[uns[neighbors_key]['connectivities_key']]`` as the graph.
    obsp
        Take ``obsp[obsp]`` as the graph.
    copy
        Return a copy instead of writing into ``adata``.
    flavor
        ``"igraph"``: the algorithm of igraph's ``community_leiden``.
    **clustering_args
        ``objective_function`` (``"modularity"`` or ``"CPM"``) and ``beta``
        as for :meth:`igraph.Graph.community_leiden`.

    Returns
    -------
    ``None``, or the copy when ``copy=True``. Sets ``adata.obs[key_added]``
    (categorical of string labels ``'0'``, ``'1'``, … with ``'0'`` the
    largest cluster, categories in natsorted order) and
    ``adata.uns[key_added]['params']`` (``resolution``, ``random_state``,
    ``n_iterations``).

    Examples
    --------
    >>> import anndataoom as oom
    >>> import scanpy as sc
    >>> a = oom.read("pbmc.h5ad")  # doctest: +SKIP
    >>> oom.pp.pca(a)  # doctest: +SKIP
    >>> sc.pp.neighbors(a)  # doctest: +SKIP
    >>> oom.tl.leiden(a, resolution=0.5)  # doctest: +SKIP
    """
    # scanpy's helpers, imported here: importing anndataoom does not import scanpy.
    from scanpy._utils import _choose_graph
    from scanpy.tools._utils_clustering import rename_groups, restrict_adjacency

    objective, beta = _check_args(resolution, directed, partition_type, flavor, clustering_args)
    if not isinstance(n_iterations, numbers.Integral) or isinstance(n_iterations, bool):
        msg = f"n_iterations must be an integer (negative: until stable), got {n_iterations!r}"
        raise TypeError(msg)
    adata = adata.copy() if copy else adata
    if adjacency is None:
        adjacency = _choose_graph(adata, obsp, neighbors_key)
    check_indices(adjacency, "the graph")
    if restrict_to is not None:
        restrict_key, restrict_categories = restrict_to
        adjacency, restrict_indices = restrict_adjacency(
            adata, restrict_key, restrict_categories=restrict_categories, adjacency=adjacency
        )
    groups = _membership(
        adjacency, resolution, objective, beta, n_iterations, random_state, use_weights
    )
    if restrict_to is not None:
        if key_added == "leiden":
            key_added += "_R"
        groups = rename_groups(
            adata,
            key_added=key_added,
            restrict_key=restrict_key,
            restrict_categories=restrict_categories,
            restrict_indices=restrict_indices,
            groups=groups,
        )
    adata.obs[key_added] = pd.Categorical(
        values=groups.astype("U"), categories=natsorted(map(str, np.unique(groups)))
    )
    adata.uns[key_added] = {
        "params": {
            "resolution": resolution,
            "random_state": random_state,
            "n_iterations": n_iterations,
        }
    }
    return adata if copy else None


def _check_args(
    resolution: float,
    directed: bool | None,
    partition_type: Any,
    flavor: str,
    clustering_args: dict[str, Any],
) -> tuple[str, float]:
    """Reject what the Rust Leiden does not do; return (objective, beta)."""
    if flavor != "igraph":
        msg = f"oom.tl.leiden runs igraph's algorithm (flavor='igraph'), not {flavor!r}; {_ROUTE}"
        raise ValueError(msg)
    if directed:
        msg = f"oom.tl.leiden clusters undirected graphs only (directed=True); {_ROUTE}"
        raise ValueError(msg)
    if partition_type is not None:
        msg = f"oom.tl.leiden does not take a leidenalg partition_type; {_ROUTE}"
        raise ValueError(msg)
    args = dict(clustering_args)
    objective = str(args.pop("objective_function", "modularity"))
    beta = float(args.pop("beta", 0.01))
    if args:
        msg = f"oom.tl.leiden does not take {sorted(args)}; {_ROUTE}"
        raise ValueError(msg)
    if objective.lower() not in _OBJECTIVES:
        msg = f"objective_function must be 'modularity' or 'CPM', got {objective!r}"
        raise ValueError(msg)
    if resolution is None or not np.isfinite(resolution) or resolution < 0:
        msg = f"resolution must be a number >= 0, got {resolution!r}"
        raise ValueError(msg)
    return _OBJECTIVES[objective.lower()], beta


def _membership(
    adjacency: Any,
    resolution: float,
    objective: str,
    beta: float,
    n_iterations: int,
    random_state: Any,
    use_weights: bool,
) -> np.ndarray:
    """Community of every node of `adjacency`, ``0`` the largest."""
    if isinstance(adjacency, np.ndarray) and adjacency.ndim == 2:
        adjacency = sp.csr_matrix(adjacency)
    if not sp.issparse(adjacency):
        what = type(adjacency).__name__
        msg = f"the graph must be a scipy sparse matrix or a 2-d array, got {what}"
        raise TypeError(msg)
    n, m = adjacency.shape
    if n != m:
        msg = f"the graph must be square, got shape {adjacency.shape}"
        raise ValueError(msg)
    csr = adjacency if adjacency.format == "csr" else sp.csr_matrix(adjacency)
    # The stored arrays as they are (no copy for scanpy's int32 / float32 CSR).
    indptr = np.ascontiguousarray(csr.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(csr.indices, dtype=np.int32)
    data = csr.data
    if not use_weights:
        data = (data != 0).astype(np.float32)  # scanpy's graph keeps nonzeros only
    elif data.dtype not in (np.float32, np.float64):
        data = data.astype(np.float64)
    membership, _, _ = _oom.leiden(
        n,
        indptr,
        indices,
        np.ascontiguousarray(data),
        float(resolution),
        objective,
        int(n_iterations),
        seed_of(random_state),
        beta,
    )
    return membership
