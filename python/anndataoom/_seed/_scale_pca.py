"""0.1.8-compatible ``chunked_scale`` and ``chunked_pca``.

``chunked_scale`` uses the statistics and the lazy ``scale`` op of
:func:`anndataoom.pp.scale`; ``chunked_pca`` runs the exact streaming PCA
of the Rust core (Gram matrix + eigendecomposition, block Krylov for very
many genes) on the scaled layer, restricted to the highly variable genes.
Unlike 0.1.8, ``variance_ratio`` is the share of the **total** variance
(scanpy's definition), not of the variance of the computed components.
"""

from __future__ import annotations

import numpy as np

from anndataoom import _oom
from anndataoom._seed._common import cast_float32, lazy_matrix

__all__ = ["chunked_scale", "chunked_pca", "hvg_positions"]


def chunked_scale(adata, *, max_value: float | None = 10.0,
                  chunk_size: int | None = None) -> None:
    """Store a lazy z-score of ``X`` in ``layers['scaled']`` (anndataoom 0.1.8 API).

    Per gene ``(x − mean) / std`` (std with ddof=1, 0 replaced by 1),
    clipped to ``±max_value``, float32.  ``X`` is unchanged.

    Raises
    ------
    RuntimeError
        If ``X`` is already scaled.
    """
    from anndataoom._seed._common import store
    from anndataoom.pp._scale import mean_std

    m = lazy_matrix(adata.X)
    if "scale" in tuple(_oom.op_names(m)):
        raise RuntimeError(
            "adata.X is already scaled; scaling it again would z-score z-scores. Reset X to "
            "the unscaled (normalised, log1p) matrix before calling chunked_scale again.")
    mean, std = mean_std(adata.X)
    out = _oom.lazy_scale(m, np.ascontiguousarray(mean, dtype=np.float64),
                        np.ascontiguousarray(std, dtype=np.float64), True,
                        None if max_value is None else float(max_value))
    store(adata, cast_float32(out), "scaled")


def hvg_positions(adata, use_highly_variable: bool) -> np.ndarray | None:
    """Column positions of the flagged genes, as 0.1.8 resolves them.

    Reads ``var['highly_variable_features']`` (omicverse) or else
    ``var['highly_variable']`` (scanpy); ``None`` when disabled, absent, or
    when the flag selects no gene or every gene.
    """
    if not use_highly_variable:
        return None
    for key in ("highly_variable_features", "highly_variable"):
        if key in adata.var.columns:
            mask = np.asarray(adata.var[key].to_numpy(), dtype=bool)
            n = int(mask.sum())
            if 0 < n < adata.n_vars:
                return np.flatnonzero(mask).astype(np.int64)
            return None
    return None


def chunked_pca(
    adata,
    *,
    layer: str = "scaled",
    n_comps: int = 50,
    n_oversamples: int = 10,
    n_power_iters: int = 4,
    chunk_size: int | None = None,
    random_state: int = 0,
    materialize_threshold_gb: float = 16.0,
    use_implicit_centering: bool = True,
    use_highly_variable: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of ``layers[layer]`` (``X`` if absent) without materialising it (anndataoom 0.1.8 API).

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM`.
    layer
        Layer to decompose (``'scaled'`` from :func:`chunked_scale`).
    n_comps
        Number of components (at most ``min(n_obs, n_genes)``).
    random_state
        Seed of the (iterative) solver's start.
    use_highly_variable
        Restrict to ``var['highly_variable_features']`` / ``var['highly_variable']``.
    n_oversamples, n_power_iters, chunk_size, materialize_threshold_gb, use_implicit_centering
        0.1.8's randomized-SVD knobs; accepted and ignored (the solver is
        exact and streams).

    Returns
    -------
    ``(X_pca, components, variance_ratio)``: float32 scores
    ``(n_obs, n_comps)``, loadings ``(n_comps, n_genes_used)`` and float64
    explained-variance ratios over the total variance of the data used.
    """
    x = adata.layers[layer] if layer in adata.layers else adata.X
    m = lazy_matrix(x, f"layers[{layer!r}]" if layer in adata.layers else "X")
    cols = hvg_positions(adata, use_highly_variable)
    if cols is not None:
        m = m.subset(None, cols)
    n_obs, n_vars = (int(s) for s in m.shape)
    k = max(1, min(int(n_comps), n_obs, n_vars))
    seed = random_state if isinstance(random_state, (int, np.integer)) else 0
    r = _oom.pca(m, k, zero_center=True, solver="auto", seed=int(seed) & (2**63 - 1),
                 dtype="float32")
    X_pca = np.asarray(r["scores"], dtype=np.float32)
    components = np.ascontiguousarray(np.asarray(r["components"]).T)
    variance_ratio = np.asarray(r["variance_ratio"], dtype=np.float64)
    return X_pca, components, variance_ratio
