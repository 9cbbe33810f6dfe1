"""A check every graph tool runs before handing a user's graph to scipy."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def check_indices(graph, what: str) -> None:
    """Raise ``IndexError`` if a stored index of the sparse ``graph`` is out of range.

    scipy's sparse kernels (conversion, indexing, sums) do not check stored
    indices and read out of bounds — a crash, or silently wrong numbers —
    on one out of range.
    """
    if not sp.issparse(graph) or graph.nnz == 0:
        return
    if graph.format in ("csr", "csc"):
        pairs = [(graph.indices, graph.shape[1] if graph.format == "csr" else graph.shape[0])]
    elif graph.format == "coo":
        pairs = [(graph.row, graph.shape[0]), (graph.col, graph.shape[1])]
    else:
        return
    for idx, bound in pairs:
        if np.min(idx) < 0 or np.max(idx) >= bound:
            raise IndexError(f"{what}: a stored index is out of range")
