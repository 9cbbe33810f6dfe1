"""``is_oom`` and ``oom_guard``: run in-memory-only functions on an OOM object."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence

import pandas as pd

__all__ = ["OOMMaterializeWarning", "is_oom", "oom_guard"]


class OOMMaterializeWarning(UserWarning):
    """An out-of-memory object is being loaded into memory (by :func:`oom_guard`)."""


def is_oom(obj) -> bool:
    """Return True for an :class:`~anndataoom.AnnDataOOM` (or an object with ``_is_oom = True``)."""
    from anndataoom._core._anndataoom import AnnDataOOM

    return isinstance(obj, AnnDataOOM) or getattr(obj, "_is_oom", False) is True


def _changed_keys(before: dict, after, wanted) -> list[str]:
    """Keys of ``after`` to copy back: listed ones, or new/replaced ones for ``'*'``."""
    if not wanted:
        return []
    keys = list(after.keys())
    if "*" in wanted:
        return [k for k in keys if k not in before or after[k] is not before[k]]
    return [k for k in wanted if k in after]


def oom_guard(
    materialize: bool = True,
    result_keys_uns: Sequence[str] | None = None,
    result_keys_obs: Sequence[str] | None = None,
    result_keys_obsm: Sequence[str] | None = None,
    result_keys_obsp: Sequence[str] | None = None,
    suggest: str | None = None,
) -> Callable:
    """Make a decorator that lets a function written for in-memory AnnData accept an OOM object.

    When the first positional argument (or ``adata=``) is an OOM object, it
    is materialised with ``to_adata()`` (with an :class:`OOMMaterializeWarning`,
    since this loads X and layers whole), the function runs on the in-memory
    copy, and the listed result keys are copied back to the OOM object
    (``'*'`` = every key the function added or replaced).  The function's
    return value is returned.  Other arguments pass through unchanged.

    Parameters
    ----------
    materialize
        If False, calling with an OOM object raises ``NotImplementedError``
        (with ``suggest`` as a hint) instead of materialising.
    result_keys_uns, result_keys_obs, result_keys_obsm, result_keys_obsp
        Keys copied back into ``uns``/``obs``/``obsm``/``obsp``.
    suggest
        Text appended to the error when ``materialize`` is False.
    """
    wanted = {
        "uns": list(result_keys_uns or ()),
        "obs": list(result_keys_obs or ()),
        "obsm": list(result_keys_obsm or ()),
        "obsp": list(result_keys_obsp or ()),
    }

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if args and is_oom(args[0]):
                oom, where = args[0], 0
            elif is_oom(kwargs.get("adata")):
                oom, where = kwargs["adata"], "adata"
            else:
                return func(*args, **kwargs)
            if not materialize:
                msg = f"{func.__name__} does not support out-of-memory AnnData objects."
                raise NotImplementedError(msg + (f" {suggest}" if suggest else ""))
            warnings.warn(
                f"{func.__name__}: loading the out-of-memory AnnData ({oom.n_obs:,} × "
                f"{oom.n_vars:,}) into memory on purpose (anndataoom.oom_guard)",
                OOMMaterializeWarning,
                stacklevel=2,
            )
            mem = oom.to_adata()
            before = {
                "uns": dict(mem.uns),
                "obs": {c: mem.obs[c].copy() for c in mem.obs.columns},
                "obsm": dict(mem.obsm),
                "obsp": dict(mem.obsp),
            }
            if where == 0:
                args = (mem, *args[1:])
            else:
                kwargs = {**kwargs, "adata": mem}
            result = func(*args, **kwargs)
            if mem.n_obs != oom.n_obs or not mem.obs_names.equals(oom.obs_names):
                return result  # the function subset its input; nothing aligned to copy
            for k in _changed_keys(before["uns"], mem.uns, wanted["uns"]):
                oom.uns[k] = mem.uns[k]
            if wanted["obs"]:
                if "*" in wanted["obs"]:
                    cols = [c for c in mem.obs.columns
                            if c not in before["obs"] or not mem.obs[c].equals(before["obs"][c])]
                else:
                    cols = [c for c in wanted["obs"] if c in mem.obs.columns]
                for c in cols:
                    oom.obs[c] = pd.Series(mem.obs[c].values, index=oom.obs_names)
            for k in _changed_keys(before["obsm"], mem.obsm, wanted["obsm"]):
                oom.obsm[k] = mem.obsm[k]
            for k in _changed_keys(before["obsp"], mem.obsp, wanted["obsp"]):
                oom.obsp[k] = mem.obsp[k]
            return result

        wrapper._oom_guarded = True
        return wrapper

    return decorator
