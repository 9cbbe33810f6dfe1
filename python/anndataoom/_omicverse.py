"""omicverse takes its sparse branch for a sparse lazy X.

omicverse 2.3.2's ``ov.pp.identify_robust_genes`` chooses between its
sparse branch (count cells per gene, drop genes without counts, mark
genes seen in enough cells robust) and its dense one (mark every gene
robust) with ``scipy.sparse.issparse(adata.X)``.  A lazy matrix is not a
scipy matrix, so on an AnnDataOOM it took the dense branch and kept every
gene.  Making ``issparse`` answer ``True`` for lazy matrices everywhere
(scipy's ``SparseABC`` is registrable) would send scikit-learn and scanpy
down code that needs an in-memory CSR matrix (``X.tocsr()``, ``X.data``),
so instead only the ``issparse`` that omicverse module uses answers
``True`` for a lazy matrix whose blocks are sparse; its sparse branch then
runs on our streamed ``X.getnnz(axis=0)`` and ``_inplace_subset_var``.

omicverse loads ``ov.pp`` lazily, so the module is adapted when it is
imported (a meta-path hook), or at once if it already is.
"""

from __future__ import annotations

import importlib.abc
import sys

__all__ = ["adapt", "install"]

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


def adapt(module) -> None:
    """Make ``module.issparse`` answer ``True`` for a sparse lazy matrix too (once)."""
    f = getattr(module, "issparse", None)
    if f is not None and not hasattr(f, "__wrapped__"):
        module.issparse = _lazy_aware(f)


class _AdaptingLoader(importlib.abc.Loader):
    """Run the real loader, then :func:`adapt` the module it loaded."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        adapt(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Find :data:`MODULES` with the other finders and wrap their loader."""

    def find_spec(self, name, path, target=None):
        if name not in MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _AdaptingLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Adapt the modules already imported and hook the import of the others."""
    for name in MODULES:
        if name in sys.modules:
            adapt(sys.modules[name])
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


install()
