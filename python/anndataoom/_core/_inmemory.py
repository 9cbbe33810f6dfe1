"""Clear errors when code written for in-memory matrices meets a lazy one.

scanpy functions that rewrite X (``sc.pp.normalize_total``, ``sc.pp.log1p``,
…) or need all of it in memory reach a :class:`BackedArray` through numpy
protocols, operators or in-place ufuncs.  Those entry points call
:func:`unsupported`, which names the scanpy function being run (found on the
call stack) and its anndataoom alternative.  Converting a lazy matrix to a
numpy array (``np.asarray``, ufuncs) works while the dense result stays
below :func:`max_dense_bytes`, except inside a scanpy function listed in
:data:`ALTERNATIVES` (it would replace the lazy X by a dense copy).
"""

from __future__ import annotations

import os
import sys
from types import FrameType

import numpy as np

__all__ = [
    "InMemoryRequiredError", "check_dense_size", "guard_scanpy", "max_dense_bytes", "unsupported",
]

#: scanpy function → what to call instead on an AnnDataOOM.
ALTERNATIVES = {
    "calculate_qc_metrics": "anndataoom.pp.calculate_qc_metrics(adata)",
    "filter_cells": "anndataoom.pp.filter_cells(adata, ...)",
    "filter_genes": "anndataoom.pp.filter_genes(adata, ...)",
    "normalize_total": "anndataoom.pp.normalize_total(adata)",
    "log1p": "anndataoom.pp.log1p(adata)",
    "highly_variable_genes": "anndataoom.pp.highly_variable_genes(adata)",
    "scale": "anndataoom.pp.scale(adata)",
    "pca": "anndataoom.pp.pca(adata)",
    "regress_out": "anndataoom.pp.regress_out(adata, keys)",
    "rank_genes_groups": "anndataoom.tl.rank_genes_groups(adata, groupby)",
    "highest_expr_genes": "anndataoom.pp.calculate_qc_metrics(adata) and plot its results",
}

#: scanpy-internal implementations → their public name.
_ALIASES = {"scale_anndata": "scale", "log1p_anndata": "log1p"}

_DEFAULT_MAX = 1 << 30


def max_dense_bytes() -> int:
    """Largest dense result ``np.asarray(lazy)`` builds (``ANNDATAOOM_MAX_DENSE_BYTES``, 1 GiB)."""
    v = os.environ.get("ANNDATAOOM_MAX_DENSE_BYTES")
    try:
        return int(float(v)) if v else _DEFAULT_MAX
    except ValueError:
        return _DEFAULT_MAX


class InMemoryRequiredError(TypeError):
    """An operation needs the whole matrix in memory (or writable), but it is lazy."""


def _scanpy_caller(known_only: bool = False) -> str | None:
    """Name of the outermost scanpy function on the stack (the one the user called).

    One listed in :data:`ALTERNATIVES` wins; with ``known_only`` only those count.
    """
    f: FrameType | None = sys._getframe(1)
    found, known = None, None
    while f is not None:
        mod = f.f_globals.get("__name__", "")
        if mod == "scanpy" or mod.startswith("scanpy."):
            name = _ALIASES.get(f.f_code.co_name, f.f_code.co_name)
            if not name.startswith("_") and name not in ("wrapper", "wrapped", "inner"):
                found = name
                plotting = mod.startswith("scanpy.plotting")
                if name in ALTERNATIVES and (not plotting or name == "highest_expr_genes"):
                    known = name
        f = f.f_back
    return known if known_only else (known or found)


def guard_scanpy(what: str) -> None:
    """Refuse ``what`` inside a scanpy function that has an anndataoom alternative.

    Such functions would silently load (and usually densify) all of X and
    replace the lazy matrix with an in-memory one; the alternative streams.
    """
    if _scanpy_caller(known_only=True) is not None:
        raise unsupported(what)


def _alternative(caller: str) -> str | None:
    """Return the alternative for ``caller`` if anndataoom provides it (checked at run time)."""
    alt = ALTERNATIVES.get(caller)
    if not alt:
        return None
    import importlib

    mod, _, name = alt.split("(", 1)[0].rpartition(".")
    try:
        ok = hasattr(importlib.import_module(mod), name)
    except ImportError:
        ok = False
    return alt if ok else None


def unsupported(what: str) -> InMemoryRequiredError:
    """Build the error to raise for ``what`` (e.g. ``"in-place np.log1p"``) on a lazy matrix."""
    caller = _scanpy_caller()
    msg = f"{what} is not possible on a lazy, read-only anndataoom matrix (X stays on disk)."
    if caller is not None:
        msg = f"scanpy.{caller} needs X in memory: " + msg
        alt = _alternative(caller)
        if alt:
            msg += f" Use {alt} instead, which streams X from disk."
        elif caller in ALTERNATIVES:
            msg += " anndataoom has no streamed version of it yet."
    msg += (" To load the data on purpose, use adata.to_memory(), or decorate your function "
            "with anndataoom.oom_guard().")
    return InMemoryRequiredError(msg)


def check_dense_size(shape: tuple[int, int], dtype) -> None:
    """Raise :class:`InMemoryRequiredError` if a dense ``shape`` array is too big."""
    nbytes = int(shape[0]) * int(shape[1]) * np.dtype(dtype).itemsize
    limit = max_dense_bytes()
    if nbytes > limit:
        raise unsupported(
            f"converting a {shape[0]:,} × {shape[1]:,} {np.dtype(dtype)} matrix to a dense "
            f"numpy array ({nbytes / 2**30:.2f} GiB > ANNDATAOOM_MAX_DENSE_BYTES="
            f"{limit / 2**30:.2f} GiB)"
        )
