"""The one place that decides what may become dense or in memory.

Every path that could turn a lazy matrix into an in-memory one asks this
module first:

- :func:`check_dense_size` — a dense copy the user asked for by name
  (``np.asarray(X)``, ``a.to_df()``, :func:`~anndataoom.oom_guard`) is
  allowed up to :func:`max_dense_bytes` (``ANNDATAOOM_MAX_DENSE_BYTES``).
- :func:`guard_scanpy` — a scanpy function listed in :data:`SCANPY` as not
  working out of core is refused as soon as it touches ``X``, a lazy layer,
  ``raw.X``, ``uns`` or the numpy protocols of a lazy matrix, **before** it writes anything into
  the object, with :class:`InMemoryRequiredError` naming the out-of-core
  alternative.
- :func:`unsupported` builds that error for any other refused operation
  (arithmetic, in-place ufuncs, assignment into X).

:data:`SCANPY` is also the source of the README table "What works on an
AnnDataOOM" (:func:`what_works_table`); a test keeps the two equal.
"""

from __future__ import annotations

import importlib
import os
import sys
import weakref
from dataclasses import dataclass
from types import FrameType

import numpy as np

__all__ = [
    "SCANPY",
    "InMemoryRequiredError",
    "ScanpyEntry",
    "check_dense_size",
    "guard_scanpy",
    "is_oom",
    "max_dense_bytes",
    "unsupported",
    "what_works_table",
]

_DEFAULT_MAX = 1 << 30


class InMemoryRequiredError(TypeError):
    """An operation needs the whole matrix in memory (or writable), but it is lazy.

    Raised before the object is changed; the message names the out-of-core
    way (an ``anndataoom`` function) when there is one.
    """


@dataclass(frozen=True)
class ScanpyEntry:
    """How one scanpy function behaves on an :class:`~anndataoom.AnnDataOOM`.

    Parameters
    ----------
    name
        ``section.function`` under ``scanpy`` (``pp.sqrt``, ``pl.umap``,
        ``metrics.morans_i``).
    works
        True when scanpy's own function runs on the lazy object (it only
        reads obs/obsm/obsp or a few columns); False when it needs X in
        memory and is refused.
    alternative
        The anndataoom call that does it out of core (for a refused one), or
        faster with the same result layout (for a working one).
    reads_x_before_uns
        True when a refused function reads X before it writes anything to
        ``uns``: refusing the read is enough, and its ``uns`` write is let
        through when it needed no X (``filter_rank_genes_groups`` when
        ``rank_genes_groups`` stored ``pts``).
    """

    name: str
    works: bool = False
    alternative: str | None = None
    reads_x_before_uns: bool = False

    @property
    def section(self) -> str:
        """``pp``, ``tl``, ``pl``, ``get``, ``metrics`` or ``experimental.pp``."""
        return self.name.rpartition(".")[0]

    @property
    def function(self) -> str:
        """The function's own name."""
        return self.name.rpartition(".")[2]

    @property
    def status(self) -> str:
        """``works``, ``out-of-core alternative`` or ``refused``."""
        if self.works:
            return "works"
        return "out-of-core alternative" if self.alternative else "refused"


def _refused(name: str, alternative: str | None = None, *,
             reads_x_before_uns: bool = False) -> ScanpyEntry:
    return ScanpyEntry(name, works=False, alternative=alternative,
                       reads_x_before_uns=reads_x_before_uns)


def _works(name: str, faster: str | None = None) -> ScanpyEntry:
    return ScanpyEntry(name, works=True, alternative=faster)


#: scanpy functions on an AnnDataOOM: which work, which are refused and
#: what to call instead.  The README table is generated from this.
SCANPY: tuple[ScanpyEntry, ...] = (
    _refused("pp.calculate_qc_metrics", "oom.pp.calculate_qc_metrics(adata)"),
    _refused("pp.filter_cells", "oom.pp.filter_cells(adata, ...)"),
    _refused("pp.filter_genes", "oom.pp.filter_genes(adata, ...)"),
    _refused("pp.normalize_total", "oom.pp.normalize_total(adata)"),
    _refused("pp.log1p", "oom.pp.log1p(adata)"),
    _refused("pp.sqrt", "oom.pp.sqrt(adata)"),
    _refused("pp.highly_variable_genes", "oom.pp.highly_variable_genes(adata)"),
    _refused("pp.scale", "oom.pp.scale(adata)"),
    _refused("pp.pca", "oom.pp.pca(adata)"),
    _refused("pp.regress_out", "oom.pp.regress_out(adata, keys)"),
    _refused("pp.combat", "oom.pp.combat(adata, key)"),
    _refused("pp.downsample_counts", "oom.pp.downsample_counts(adata, ...)"),
    _refused("pp.normalize_per_cell", "oom.pp.normalize_total(adata)"),
    _refused("pp.scrublet", "oom.pp.scrublet(adata)"),
    _refused("pp.scrublet_simulate_doublets", "oom.pp.scrublet_simulate_doublets(adata)"),
    _refused("tl.rank_genes_groups", "oom.tl.rank_genes_groups(adata, groupby)"),
    _refused("tl.filter_rank_genes_groups", "oom.tl.filter_rank_genes_groups(adata)",
             reads_x_before_uns=True),
    _refused("get.aggregate", "oom.get.aggregate(adata, by, func)"),
    _refused("pl.highest_expr_genes", "oom.pl.highest_expr_genes(adata)"),
    _refused("experimental.pp.highly_variable_genes",
             "oom.experimental.pp.highly_variable_genes(adata, n_top_genes=...)"),
    _refused("experimental.pp.normalize_pearson_residuals",
             "oom.experimental.pp.normalize_pearson_residuals(adata)"),
    _refused("experimental.pp.normalize_pearson_residuals_pca",
             "oom.experimental.pp.normalize_pearson_residuals_pca(adata)"),
    _refused("experimental.pp.recipe_pearson_residuals",
             "oom.experimental.pp.recipe_pearson_residuals(adata)"),
    _refused("pp.filter_genes_dispersion", "oom.pp.highly_variable_genes(adata)"),
    _refused("pp.recipe_zheng17", "oom.pp.recipe_zheng17(adata)"),
    _refused("pp.recipe_seurat", "oom.pp.recipe_seurat(adata)"),
    _refused("pp.recipe_weinreb17", "oom.pp.recipe_weinreb17(adata)"),
    _refused("metrics.morans_i"),
    _refused("metrics.gearys_c"),
    _works("pp.neighbors", "oom.pp.neighbors(adata)"),
    _works("tl.umap", "oom.tl.umap(adata)"),
    _works("tl.leiden", "oom.tl.leiden(adata)"),
    _works("pl.umap"),
    _works("pl.violin"),
)

def _kind(section: str) -> str:
    """Which part of scanpy a section (``pl``) or module (``scanpy.plotting._x``) is in.

    The same function name can be in two parts (``highly_variable_genes``).
    """
    part = section.removeprefix("scanpy.").split(".", 1)[0]
    return {"pl": "pl", "plotting": "pl", "experimental": "experimental"}.get(part, "")


#: Refused scanpy function (its part of scanpy, its name) → entry, found on the call stack.
_REFUSED = {(_kind(e.section), e.function): e for e in SCANPY if not e.works}
#: scanpy-internal implementations → their public name.
_ALIASES = {"scale_anndata": "scale", "log1p_anndata": "log1p"}


def is_oom(obj) -> bool:
    """Return True for an :class:`~anndataoom.AnnDataOOM` (or an object with ``_is_oom = True``)."""
    from anndataoom._core._anndataoom import AnnDataOOM

    return isinstance(obj, AnnDataOOM) or getattr(obj, "_is_oom", False) is True


def max_dense_bytes() -> int:
    """Largest in-memory copy allowed on request (``ANNDATAOOM_MAX_DENSE_BYTES``, 1 GiB)."""
    v = os.environ.get("ANNDATAOOM_MAX_DENSE_BYTES")
    if not v:
        return _DEFAULT_MAX
    try:
        limit = float(v)
    except ValueError:
        limit = float("nan")
    if not limit >= 0:  # a typo must not quietly restore the default (or lift the cap)
        raise ValueError(f"ANNDATAOOM_MAX_DENSE_BYTES must be a number of bytes, got {v!r}")
    return int(min(limit, 2**63 - 1))


#: scanpy's modules → the namespace users call their functions from.
_SECTIONS = (("scanpy.preprocessing", "pp"), ("scanpy.neighbors", "pp"), ("scanpy.tools", "tl"),
             ("scanpy.plotting", "pl"), ("scanpy.get", "get"), ("scanpy.metrics", "metrics"),
             ("scanpy.experimental.pp", "experimental.pp"))


def _public_name(module: str, name: str) -> str:
    """``pp.pca`` for ``pca`` defined in ``scanpy.preprocessing._pca``."""
    for prefix, section in _SECTIONS:
        if module == prefix or module.startswith(prefix + "."):
            return f"{section}.{name}"
    return name


def _scanpy_caller() -> tuple[str | None, ScanpyEntry | None]:
    """Return the outermost scanpy function on the stack, and the outermost refused entry.

    The refused one may be a step of the user's call (neighbors → pca, a
    dotplot's dendrogram → pca), which the message then names as such.
    """
    f: FrameType | None = sys._getframe(1)
    found, known = None, None
    while f is not None:
        mod = f.f_globals.get("__name__", "")
        if mod == "scanpy" or mod.startswith("scanpy."):
            name = _ALIASES.get(f.f_code.co_name, f.f_code.co_name)
            if not name.startswith("_") and name not in ("wrapper", "wrapped", "inner"):
                found = _public_name(mod, name)
                entry = _REFUSED.get((_kind(mod), name))
                if entry is not None:
                    known = entry
        f = f.f_back
    return found, known


def guard_scanpy(what: str, *, uns_write: bool = False) -> None:
    """Refuse ``what`` inside a scanpy function that does not work out of core.

    Such functions would load (and usually densify) all of X, replace the
    lazy matrix with an in-memory one, or half-fill ``uns``; the error names
    the streamed alternative.  ``uns_write`` marks a write into ``uns``.
    """
    entry = _scanpy_caller()[1]
    if entry is not None and not (uns_write and entry.reads_x_before_uns):
        raise unsupported(what)


def _available(alt: str) -> bool:
    """Whether the ``oom.…`` function named by ``alt`` exists in this install."""
    path = "anndataoom." + alt.split("(", 1)[0].removeprefix("oom.")
    mod, _, name = path.rpartition(".")
    try:
        return hasattr(importlib.import_module(mod), name)
    except ImportError:
        return False


def unsupported(what: str, hint: str = "") -> InMemoryRequiredError:
    """Build the error to raise for ``what`` (e.g. ``"in-place np.log1p"``) on a lazy matrix.

    ``hint`` (a sentence) is added before the general advice.
    """
    caller, entry = _scanpy_caller()
    msg = f"{what} was refused: the matrix is lazy and read-only here (it stays on disk)."
    if caller is not None:
        step = entry is not None and entry.name != caller
        if step:
            msg = f"scanpy.{caller} runs scanpy.{entry.name}, which needs X in memory: " + msg
        else:
            msg = f"scanpy.{caller} needs X in memory: " + msg
        if entry is not None and entry.alternative and _available(entry.alternative):
            how = (f"Run {entry.alternative} first" if step else f"Use {entry.alternative} instead")
            msg += f" {how} (import anndataoom as oom), which streams X"
            msg += f" and stores what scanpy.{caller} looks for." if step else "."
        elif entry is not None:
            msg += " anndataoom has no out-of-core version of it yet."
    if hint:
        msg += f" {hint}"
    msg += (" To load the data on purpose, use adata.to_memory(), or run the function "
            "under anndataoom.oom_guard.")
    return InMemoryRequiredError(msg)


def check_dense_size(shape: tuple[int, int], dtype, what: str = "a dense numpy array") -> None:
    """Raise :class:`InMemoryRequiredError` if ``shape`` × ``dtype`` exceeds the cap."""
    nbytes = int(shape[0]) * int(shape[1]) * np.dtype(dtype).itemsize
    check_memory(nbytes, f"converting a {shape[0]:,} × {shape[1]:,} {np.dtype(dtype)} "
                         f"matrix to {what}")


def size_text(nbytes: float) -> str:
    """``nbytes`` in the largest binary unit that keeps it ≥ 1 (``"3.2 MiB"``)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.2f} {unit}"
    return f"{int(nbytes)} bytes"


def check_memory(nbytes: int, what: str) -> None:
    """Raise :class:`InMemoryRequiredError` if ``what`` needs more than the cap."""
    limit = max_dense_bytes()
    if nbytes > limit:
        raise unsupported(
            f"{what} ({size_text(nbytes)} > ANNDATAOOM_MAX_DENSE_BYTES={size_text(limit)})"
        )


def check_fits_in_ram(nbytes: int, what: str) -> None:
    """Raise ``MemoryError`` before any reading if ``what`` needs more than this machine's RAM."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): numpy will tell
        return
    if nbytes > ram:
        raise MemoryError(f"{what} needs {size_text(nbytes)}, more than this machine's "
                          f"{size_text(ram)} of memory; work on a subset, or stream it "
                          "(chunked, blocks)")


def what_works_table() -> str:
    """Return the README's markdown table of :data:`SCANPY` (works / alternative / refused)."""
    rows = ["| scanpy function | on an AnnDataOOM | out-of-core way |", "|---|---|---|"]
    for e in SCANPY:
        if e.works:
            how = (f"scanpy's own, or `{e.alternative}` (Rust, same layout, for atlases)"
                   if e.alternative else "scanpy's own, as is")
        else:
            how = f"`{e.alternative}`" if e.alternative else "none yet: `adata.to_memory()` first"
        rows.append(f"| `sc.{e.name}` | {e.status} | {how} |")
    return "\n".join(rows)


class GuardedUns(dict):
    """``AnnDataOOM.uns``: a plain ``dict`` that refuses writes from refused scanpy functions.

    scanpy's ``rank_genes_groups`` (and others) write ``uns[key] = {}``
    before reading X; refusing that first write keeps a refused call from
    leaving a half-written entry behind.  When no matrix of the owner is
    lazy (X, layers and ``raw.X`` all in memory) the function can read
    them, so its writes go through.  Copies are plain dicts.
    """

    def __init__(self, *args, owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._owner = None if owner is None else weakref.ref(owner)

    def __setitem__(self, key, value) -> None:
        owner = None if self._owner is None else self._owner()
        if owner is None or owner._has_lazy_matrix():
            guard_scanpy(f"writing uns[{key!r}]", uns_write=True)
        super().__setitem__(key, value)

    def copy(self) -> dict:
        """Return a plain ``dict`` copy."""
        return dict(self)

    def __deepcopy__(self, memo) -> dict:
        from copy import deepcopy

        return deepcopy(dict(self), memo)

    def __reduce__(self):
        return dict, (dict(self),)


def _called_from_anndata_merge() -> bool:
    """Whether anndata's own concatenation (``anndata._core.merge``) is reading the value."""
    f: FrameType | None = sys._getframe(2)
    for _ in range(4):
        if f is None:
            return False
        if f.f_globals.get("__name__", "") == "anndata._core.merge":
            return True
        f = f.f_back
    return False


class AnnDataConcatWarning(UserWarning):
    """anndata's own concat loaded an AnnDataOOM's matrix into memory (sparse kept sparse)."""


def for_anndata_merge(value, what: str):
    """``value`` as anndata's concat receives it: lazy stays lazy, except inside that concat.

    ``anndata.concat`` is routed to the lazy :func:`anndataoom.concat`; where
    it cannot be (mixed in-memory inputs, ``axis=1``, a ``concat`` imported
    before anndataoom), anndata would densify a lazy matrix.  It gets the
    in-memory matrix instead (sparse stays sparse; refused above
    ``ANNDATAOOM_MAX_DENSE_BYTES``), with an :class:`AnnDataConcatWarning`.
    """
    from anndataoom._core._lazy import LazyMatrix

    if not isinstance(value, LazyMatrix) or not _called_from_anndata_merge():
        return value
    nnz = value.nnz if value.is_sparse else value.size
    check_memory(nnz * (value.dtype.itemsize + 8), f"anndata.concat loading {what}")
    import warnings

    warnings.warn(
        f"anndata.concat could not be routed to the lazy anndataoom.concat; {what} is loaded "
        "into memory (sparse kept sparse). Use anndataoom.concat for a lazy result.",
        AnnDataConcatWarning, stacklevel=4,
    )
    return value.to_memory()
