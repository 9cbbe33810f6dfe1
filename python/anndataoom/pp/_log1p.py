"""``log1p``: a lazy ``log(1 + x)`` (optionally in another base)."""

from __future__ import annotations

import logging

import numpy as np

from anndataoom import _oom
from anndataoom.pp._backed import get_array, set_matrix, transform
from anndataoom.pp._docs import doc_adata, doc_layer, doc_lazy, doc_params

__all__ = ["log1p"]

_log = logging.getLogger("anndataoom")


@doc_params(adata=doc_adata, layer=doc_layer, lazy=doc_lazy)
def log1p(
    data,
    *,
    base: float | None = None,
    copy: bool = False,
    chunked: bool | None = None,
    chunk_size: int | None = None,
    layer: str | None = None,
    obsm: str | None = None,
):
    """Logarithmize the data matrix: ``X = log(1 + X)`` (scanpy's ``log1p``).

    Parameters
    ----------
    data
        An :class:`~anndataoom.AnnDataOOM` (``X`` stays on disk) or an in-memory
        :class:`~anndata.AnnData` (handed over to scanpy).
    base
        Base of the logarithm (natural log when ``None``).
    copy
        Work on and return a copy.
    chunked, chunk_size
        Accepted for compatibility; the lazy transform is always applied
        block by block.
    {layer}
    obsm
        Transform ``adata.obsm[obsm]`` (in memory) instead.

    Returns
    -------
    ``None`` or the copy. Sets ``adata.uns['log1p'] = {{'base': base}}``.
    Integer input becomes float64, float input keeps its type (as scanpy).

    {lazy}
    """
    if hasattr(data, "matrix"):  # a lazy matrix on its own
        return transform(data, _oom.lazy_log1p, None if base is None else float(base))
    if not hasattr(data, "uns"):
        import scanpy as sc

        return sc.pp.log1p(data, base=base, copy=copy)
    adata = data
    if "log1p" in adata.uns:
        _log.warning("adata.X seems to be already log-transformed.")
    adata = adata.copy() if copy else adata
    if obsm is not None:
        x = np.asarray(adata.obsm[obsm])
        x = np.log1p(x.astype(np.float64) if not np.issubdtype(x.dtype, np.floating) else x)
        if base is not None:
            x = x / np.log(base)
        adata.obsm[obsm] = x
    else:
        x = get_array(adata, layer)
        if x is None:
            import scanpy as sc

            sc.pp.log1p(adata, base=base, layer=layer)
            return adata if copy else None
        log_base = None if base is None else float(base)
        set_matrix(adata, transform(x, _oom.lazy_log1p, log_base), layer)
    adata.uns["log1p"] = {"base": base}
    return adata if copy else None
