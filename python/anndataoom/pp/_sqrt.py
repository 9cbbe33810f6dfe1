"""``sqrt``: a lazy element-wise square root (scanpy's ``pp.sqrt``)."""

from __future__ import annotations

from anndataoom import _oom
from anndataoom.pp._backed import get_array, set_matrix, transform
from anndataoom.pp._docs import doc_lazy, doc_params

__all__ = ["sqrt"]


@doc_params(lazy=doc_lazy)
def sqrt(data, *, copy: bool = False, chunked: bool = False, chunk_size: int | None = None):
    """Square root of the data matrix, ``X = sqrt(X)`` (scanpy's ``sqrt``).

    Parameters
    ----------
    data
        An :class:`~anndataoom.AnnDataOOM` (``X`` stays on disk), a lazy
        :class:`~anndataoom.BackedArray` (a new lazy array is returned), or
        in-memory data (handed over to scanpy).
    copy
        Work on and return a copy.
    chunked, chunk_size
        Accepted for compatibility; the transform is always applied block by block.

    Returns
    -------
    ``None``, the copy, or the new lazy array. Sparse stays sparse; float
    values keep their type, integers become float (as ``numpy.sqrt``;
    8- and 16-bit integers give float32 rather than numpy's float16).

    {lazy}
    """
    if hasattr(data, "matrix"):  # a lazy matrix on its own
        return transform(data, _oom.lazy_sqrt)
    x = get_array(data, None) if hasattr(data, "uns") else None
    if x is None:
        import scanpy as sc

        return sc.pp.sqrt(data, copy=copy, chunked=chunked, chunk_size=chunk_size)
    adata = data.copy() if copy else data
    set_matrix(adata, transform(x, _oom.lazy_sqrt))
    return adata if copy else None
