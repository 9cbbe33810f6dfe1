"""``oom_guard``: run a function written for in-memory AnnData on an OOM object, on purpose.

The object is loaded with ``to_memory()`` (refused above
``ANNDATAOOM_MAX_DENSE_BYTES``), the function runs on the in-memory copy,
and everything it changed — X, layers, obs, var, obsm, varm, obsp, varp,
uns, and the observations/variables it kept — is written back into the
OOM object.  A changed X or layer is kept in memory on the OOM object
(the user asked for memory by using the guard).
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Callable, Sequence

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

from anndataoom._core._guard import check_memory, is_oom

__all__ = ["OOMMaterializeWarning", "oom_guard"]

_SLOTS = ("obsm", "varm", "obsp", "varp", "uns")


class OOMMaterializeWarning(UserWarning):
    """An out-of-memory object is being loaded into memory (by :func:`oom_guard`)."""


def _fingerprint(m) -> tuple | None:
    """Shape, type and a hash of the values (detects in-place changes)."""
    if m is None:
        return None
    h = hashlib.blake2b(digest_size=16)
    if sp.issparse(m):
        for a in (m.data, m.indices, m.indptr):
            h.update(np.ascontiguousarray(a).tobytes())
    else:
        h.update(np.ascontiguousarray(np.asarray(m)).tobytes())
    return type(m), m.shape, str(m.dtype), h.hexdigest()


def _equal(a, b) -> bool:
    """Return whether ``a`` and ``b`` have the same kind, shape, dtype and values."""
    if a is b:
        return True
    if sp.issparse(a) != sp.issparse(b) or a.shape != b.shape or a.dtype != b.dtype:
        return False
    if sp.issparse(a):
        return (a != b).nnz == 0
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def _loaded_bytes(oom) -> int:
    """Memory ``oom.to_memory()`` needs for X, layers and raw."""
    from anndataoom._core._backed_array import BackedArray

    mats = [oom._X, *oom.layers.values(), None if oom.raw is None else oom.raw.X]
    total = 0
    for m in mats:
        if isinstance(m, BackedArray):
            item = m.dtype.itemsize
            if m.is_sparse:
                total += m.nnz * (item + 4) + (m.shape[0] + 1) * 8
            else:
                total += m.shape[0] * m.shape[1] * item
    return total


class _Run:
    """One guarded use of an OOM object: load it, then write the changes back."""

    def __init__(self, oom, name: str, wanted: dict[str, list[str]]):
        check_memory(_loaded_bytes(oom), f"{name}: loading the out-of-memory AnnData "
                                         f"({oom.n_obs:,} × {oom.n_vars:,}) with oom_guard")
        warnings.warn(
            f"{name}: loading the out-of-memory AnnData ({oom.n_obs:,} × "
            f"{oom.n_vars:,}) into memory on purpose (anndataoom.oom_guard)",
            OOMMaterializeWarning,
            stacklevel=4,
        )
        self.oom, self.wanted = oom, wanted
        self.mem = oom.to_memory()
        mem = self.mem
        self.X = (mem.X, _fingerprint(mem.X))
        self.layers = {k: (v, _fingerprint(v)) for k, v in mem.layers.items()}
        self.frames = {"obs": mem.obs.copy(), "var": mem.var.copy()}
        self.slots = {s: dict(getattr(mem, s)) for s in _SLOTS}

    def _keys(self, slot: str, before: dict, after) -> list[str]:
        wanted = self.wanted.get(slot)
        if wanted and "*" not in wanted:
            return [k for k in wanted if k in after]
        return [k for k in after if k not in before or after[k] is not before[k]]

    def write_back(self) -> None:
        """Copy every change the function made to the in-memory copy into the OOM object."""
        oom, mem = self.oom, self.mem
        self.pos = None
        if not (oom.obs_names.equals(mem.obs_names) and oom.var_names.equals(mem.var_names)):
            if not self._follow_subset():
                return
        if self._changed(mem.X, self.X):
            oom.X = mem.X
        for k, v in mem.layers.items():
            if k not in self.layers or self._changed(v, self.layers[k]):
                oom.layers[k] = v
        for k in set(self.layers) - set(mem.layers):
            del oom.layers[k]
        for which in ("obs", "var"):
            self._write_frame(which)
        for s in _SLOTS:
            before, after, target = self.slots[s], getattr(mem, s), getattr(oom, s)
            for k in self._keys(s, before, after):
                target[k] = after[k]
            if not self.wanted.get(s):
                for k in set(before) - set(after):
                    del target[k]

    def _changed(self, now, before: tuple) -> bool:
        """Whether a matrix differs from what loading (and any subset the function made) gives.

        A subset of rows/columns alone is not a change: the OOM object
        follows it lazily.
        """
        orig, fp = before
        if now is orig or orig is None or now is None:
            return now is not orig or _fingerprint(now) != fp
        if _fingerprint(orig) != fp:
            return True
        expected = orig if self.pos is None else orig[self.pos[0]][:, self.pos[1]]
        return not _equal(now, expected)

    def _write_frame(self, which: str) -> None:
        before, after = self.frames[which], getattr(self.mem, which)
        target = getattr(self.oom, which)
        wanted = self.wanted.get(which)
        if wanted and "*" not in wanted:
            cols = [c for c in wanted if c in after.columns]
        else:
            cols = [c for c in after.columns
                    if c not in before.columns or not after[c].equals(before[c])]
        for c in cols:
            target[c] = pd.Series(after[c].values, index=target.index)
        if not wanted:
            gone = [c for c in before.columns if c not in after.columns]
            if gone:
                target.drop(columns=gone, inplace=True)

    def _follow_subset(self) -> bool:
        """Subset the OOM object to the observations/variables the function kept."""
        oom, mem = self.oom, self.mem
        pos = []
        for old, new in ((oom.obs_names, mem.obs_names), (oom.var_names, mem.var_names)):
            if not old.is_unique:
                pos.append(None)
                continue
            p = old.get_indexer(new)
            pos.append(None if (p < 0).any() else p)
        if pos[0] is None or pos[1] is None:
            warnings.warn("oom_guard: the function changed obs/var names; results not written "
                          "back", UserWarning, stacklevel=4)
            return False
        oom._adopt(pos[0], pos[1])
        self.pos = (pos[0], pos[1])
        obs, var = self.frames["obs"], self.frames["var"]
        self.frames = {"obs": obs.iloc[pos[0]], "var": var.iloc[pos[1]]}
        return True


class _Guard:
    """What :func:`oom_guard` returns: a decorator; a context manager when given an object."""

    def __init__(self, materialize: bool, wanted: dict[str, list[str]], suggest: str | None,
                 adata=None):
        self.materialize, self.wanted, self.suggest = materialize, wanted, suggest
        self.adata = adata
        self._run: _Run | None = None

    def _start(self, oom, name: str) -> _Run:
        if not self.materialize:
            msg = f"{name} does not support out-of-memory AnnData objects."
            raise NotImplementedError(msg + (f" {self.suggest}" if self.suggest else ""))
        return _Run(oom, name, self.wanted)

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if args and is_oom(args[0]):
                oom, where = args[0], 0
            elif is_oom(kwargs.get("adata")):
                oom, where = kwargs["adata"], "adata"
            else:
                return func(*args, **kwargs)
            run = self._start(oom, func.__name__)
            if where == 0:
                args = (run.mem, *args[1:])
            else:
                kwargs = {**kwargs, "adata": run.mem}
            result = func(*args, **kwargs)
            run.write_back()
            return oom if result is run.mem else result

        wrapper._oom_guarded = True
        return wrapper

    def __enter__(self) -> anndata.AnnData:
        if self.adata is None:
            raise TypeError("oom_guard as a context manager needs the object: "
                            "`with anndataoom.oom_guard(adata) as mem: sc.pp.xyz(mem)`")
        if not is_oom(self.adata):
            return self.adata
        self._run = self._start(self.adata, "oom_guard")
        return self._run.mem

    def __exit__(self, exc_type, exc, tb) -> None:
        run, self._run = self._run, None
        if run is not None and exc_type is None:
            run.write_back()


def oom_guard(
    adata=None,
    /,
    materialize: bool = True,
    result_keys_uns: Sequence[str] | None = None,
    result_keys_obs: Sequence[str] | None = None,
    result_keys_obsm: Sequence[str] | None = None,
    result_keys_obsp: Sequence[str] | None = None,
    suggest: str | None = None,
    *,
    result_keys_var: Sequence[str] | None = None,
    result_keys_varm: Sequence[str] | None = None,
):
    """Run in-memory-only code on an OOM object on purpose, writing every result back.

    Three forms::

        @oom_guard()                       # decorator factory (also @oom_guard)
        def f(adata, ...): ...

        with oom_guard(adata) as mem:      # context manager
            sc.pp.normalize_total(mem)

    The OOM object is loaded with ``to_memory()`` (with an
    :class:`OOMMaterializeWarning`), the code runs on the in-memory copy,
    and on success everything it changed is written back into the OOM
    object: X and layers (replaced or changed in place; kept in memory),
    obs/var columns (added, changed, removed), obsm, varm, obsp, varp and
    uns keys, and a subset of observations/variables.  Other arguments and
    plain AnnData pass through unchanged.

    Parameters
    ----------
    adata
        The object for the context-manager form, or the function for the
        bare ``@oom_guard`` decorator.
    materialize
        If False, calling with an OOM object raises ``NotImplementedError``
        (with ``suggest`` as a hint) instead of loading it.
    result_keys_uns, result_keys_obs, result_keys_obsm, result_keys_obsp, result_keys_var, \
result_keys_varm
        Restrict what is copied back in that slot to these keys (``'*'``:
        every key added or replaced, the default for every slot).
    suggest
        Text appended to the error when ``materialize`` is False.

    Raises
    ------
    InMemoryRequiredError
        When X, layers and raw would need more than
        ``ANNDATAOOM_MAX_DENSE_BYTES`` in memory.
    """
    if isinstance(adata, bool):  # oom_guard(True, ...): the old positional `materialize`
        adata, materialize = None, adata
    wanted = {k: list(v or ()) for k, v in (
        ("uns", result_keys_uns), ("obs", result_keys_obs), ("obsm", result_keys_obsm),
        ("obsp", result_keys_obsp), ("var", result_keys_var), ("varm", result_keys_varm))}
    guard = _Guard(materialize, wanted, suggest)
    if callable(adata) and not isinstance(adata, anndata.AnnData):
        return guard(adata)
    guard.adata = adata
    return guard
