"""Shared parameter descriptions for the ``pp`` docstrings."""

doc_adata = """\
adata
    An :class:`~anndataoom.AnnDataOOM` (``X`` stays on disk) or an in-memory
    :class:`~anndata.AnnData` (handed over to scanpy)."""

doc_layer = """\
layer
    Use ``adata.layers[layer]`` instead of ``adata.X``."""

doc_copy = """\
copy
    Work on (and return) a copy of ``adata``; the matrix itself is never
    copied, only its lazy description."""

doc_lazy = """\
Notes
-----
The result is lazy: the transform is recorded in the matrix's plan and
applied block by block (in Rust, on all cores) whenever the data is read,
written or consumed by a statistic. ``X`` is never loaded whole."""


def doc_params(**kwds):
    """Fill ``{name}`` fields of the decorated function's docstring."""

    def dec(obj):
        obj.__doc__ = obj.__doc__.format(**kwds)
        return obj

    return dec
