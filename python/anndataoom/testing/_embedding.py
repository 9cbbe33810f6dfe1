"""Quality of a 2-D embedding: how many of each cell's neighbours it keeps."""

from __future__ import annotations

import numpy as np

__all__ = ["neighbour_preservation"]


def neighbour_preservation(high, low, k: int = 15, n_sample: int | None = None,
                           seed: int = 0) -> float:
    """Score how many of each cell's ``k`` nearest neighbours in ``high`` stay so in ``low``.

    Neighbours are exact (Euclidean, the cell itself left out) in both
    spaces; with ``n_sample`` only that many random cells are scored (their
    neighbours still come from all cells), which keeps 1M cells cheap.

    Parameters
    ----------
    high
        The original coordinates (e.g. ``obsm['X_pca']``), n × d.
    low
        The embedding (e.g. ``obsm['X_umap']``), n × 2.
    k
        Neighbours per cell.
    n_sample
        Score this many random cells (``None``: all).
    seed
        Seed of the sample.

    Returns
    -------
    The mean overlap in ``[0, 1]``.
    """
    from sklearn.neighbors import NearestNeighbors

    high, low = np.asarray(high, dtype=np.float32), np.asarray(low, dtype=np.float32)
    n = high.shape[0]
    rows = np.arange(n) if n_sample is None or n_sample >= n else \
        np.random.default_rng(seed).choice(n, n_sample, replace=False)

    def knn(x):
        idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x[rows], return_distance=False)
        # drop the cell itself (or one exact duplicate standing in for it)
        return [r[r != i][:k] for r, i in zip(idx, rows, strict=True)]

    pairs = zip(knn(high), knn(low), strict=True)
    return float(np.mean([len(np.intersect1d(a, b)) / k for a, b in pairs]))
