"""omicverse takes its sparse branch for a sparse lazy X.

omicverse 2.3.2's ``ov.pp.identify_robust_genes`` chooses between its
sparse branch (count cells per gene, drop genes without counts, mark
genes seen in enough cells robust) and its dense one (mark every gene
robust) with ``scipy.sparse.issparse(adata.X)``.  A lazy matrix is not a
scipy matrix, so on an AnnDataOOM it took the dense branch and kept every
gene.  Making ``issparse`` answer ``True`` for lazy matrices everywhere
(scipy's ``SparseABC`` is registrable) would send scikit-learn and scanpy
down code that needs an in-memory CSR matrix (``X.tocsr()``, ``X.data``),
so instead the ``issparse`` that module uses answers ``True`` for a lazy
matrix whose blocks are sparse; its sparse branch then runs on our
streamed ``X.getnnz(axis=0)`` and ``_inplace_subset_var``.

:func:`adapt` runs when anndataoom is imported (omicverse imports us while
loading that module) and when a file is read (``ov.read(..., backend="rust")``),
so the order of imports does not matter.
"""

from __future__ import annotations

import sys

__all__ = ["adapt"]

#: omicverse modules whose ``issparse`` decides a branch for an AnnDataOOM's X.
MODULES = ("omicverse.pp._preprocess",)


def _lazy_aware(issparse):
    def issparse_or_lazy_sparse(x) -> bool:
        if issparse(x):
            return True
        from anndataoom._core import BackedArray

        return isinstance(x, BackedArray) and x.is_sparse

    issparse_or_lazy_sparse.__wrapped__ = issparse
    return issparse_or_lazy_sparse


def adapt() -> None:
    """Make the loaded omicverse modules in :data:`MODULES` see a sparse lazy X as sparse."""
    for name in MODULES:
        mod = sys.modules.get(name)
        f = getattr(mod, "issparse", None)
        if f is not None and not hasattr(f, "__wrapped__"):
            mod.issparse = _lazy_aware(f)


adapt()
