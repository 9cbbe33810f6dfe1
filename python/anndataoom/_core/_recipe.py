"""``Recipe``: a picklable description that rebuilds a lazy ``_oom.Matrix``.

An ``_oom.Matrix`` holds an open file and cannot be pickled, so a worker
process (``dask.distributed``) rebuilds it: open the file, then replay the
selections and lazy transforms that produced it.  A :class:`Recipe` records
exactly that — one ``_oom`` call (or ``Matrix.subset``) whose arguments may be
other recipes — with the small parameter arrays (size factors, gene
means, positions), never the data.

:func:`matrix_for` keeps the rebuilt matrices of the current process in a
small LRU cache keyed by the recipe's token, so each worker opens a file
once per description rather than once per task.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np

from anndataoom import _oom

__all__ = ["Recipe", "aligned", "matrix_for", "remember", "require_recipe"]

#: Rebuilt matrices kept per process (each holds an open file and a few
#: per-row/per-column parameter arrays).
CACHE_SIZE = 8

_cache: OrderedDict[str, _oom.Matrix] = OrderedDict()
_cache_lock = threading.Lock()


class Recipe:
    """How to rebuild one lazy matrix: ``_oom.<op>(*args, **kwargs)``.

    The first argument is the parent recipe (a list of them for
    ``concat_matrices``; none for ``open``), rebuilt first; ``op="subset"``
    calls ``Matrix.subset`` on it.  A ``None`` among ``concat_matrices``
    parts marks a part whose origin was not recorded (see :attr:`complete`).

    Parameters
    ----------
    op
        ``"open"``, ``"subset"`` or the name of an ``_oom`` function that
        returns a new ``Matrix`` (``lazy_normalize``, ``lazy_scale``, ...).
    args, kwargs
        Its arguments, the parent recipe(s) in place of the matrix.
    """

    __slots__ = ("op", "args", "kwargs")

    def __init__(self, op: str, args: tuple = (), kwargs: dict | None = None):
        self.op = op
        self.args = _frozen(tuple(args))
        self.kwargs = dict(zip(kwargs or {}, _frozen(tuple((kwargs or {}).values())),
                               strict=True))

    @classmethod
    def open(cls, path: str | os.PathLike, key: str) -> Recipe:
        """Describe the stored element ``key`` of the file at ``path`` (made absolute)."""
        return cls("open", (os.path.abspath(os.fspath(path)), key))

    def then(self, op: str, *args, **kwargs) -> Recipe:
        """Describe ``_oom.<op>`` applied to this matrix (its first argument)."""
        return Recipe(op, (self, *args), kwargs)

    @property
    def complete(self) -> bool:
        """Whether every part can be rebuilt (no unrecorded origin)."""
        return all(r is not None and r.complete for r in self._parents())

    def _parents(self) -> list:
        if self.op == "open":
            return []
        if self.op == "concat_matrices":
            return list(self.args[0])
        return [self.args[0]]

    def build(self) -> _oom.Matrix:
        """Open the file and replay the recorded calls (in this process)."""
        if not self.complete:
            raise ValueError(
                "this lazy matrix cannot be rebuilt in another process: part of it was built "
                "from an _oom.Matrix whose origin was not recorded"
            )
        if self.op == "open":
            return _oom.open(*self.args)
        parents = [r.build() for r in self._parents()]
        args = aligned(self.args[1:])
        kwargs = dict(zip(self.kwargs, aligned(tuple(self.kwargs.values())), strict=True))
        if self.op == "subset":
            return parents[0].subset(*args, **kwargs)
        first = parents if self.op == "concat_matrices" else parents[0]
        return getattr(_oom, self.op)(first, *args, **kwargs)

    def __dask_tokenize__(self):
        return (type(self).__name__, self.op, self.args, sorted(self.kwargs.items()))

    def __getstate__(self):
        return self.op, self.args, self.kwargs

    def __setstate__(self, state):
        self.op, self.args, self.kwargs = state

    def __repr__(self) -> str:
        if self.op == "open":
            return f"Recipe.open({self.args[0]!r}, {self.args[1]!r})"
        names = [repr(a) if isinstance(a, Recipe) else type(a).__name__ for a in self.args]
        return f"Recipe({self.op}: {', '.join(names)})"


def _frozen(args: tuple) -> tuple:
    """Return ``args`` with read-only copies of its arrays.

    A caller changing its own array later (size factors, gene means) must
    not change what workers rebuild.
    """
    out = []
    for a in args:
        if isinstance(a, np.ndarray):
            a = a.copy()
            a.flags.writeable = False
        out.append(a)
    return tuple(out)


def aligned(args: tuple) -> tuple:
    """Return ``args`` with every ndarray C-contiguous and aligned.

    The bindings borrow arrays as slices, and arrays unpickled from
    ``dask.distributed`` frames may sit at unaligned offsets.
    """
    return tuple(np.require(a, requirements="CA") if isinstance(a, np.ndarray) else a
                 for a in args)


def require_recipe(x) -> Recipe:
    """Return the complete recipe of lazy array ``x``, or raise a ``ValueError`` saying why not."""
    recipe = getattr(x, "recipe", None)
    if recipe is None or not recipe.complete:
        raise ValueError(
            f"{x!r} cannot be rebuilt in a worker process: it was made from an _oom.Matrix "
            "outside anndataoom's recorded lazy operations (read, subsetting, astype, "
            "anndataoom.pp transforms, concat)"
        )
    return recipe


def remember(token: str, matrix: _oom.Matrix) -> None:
    """Cache ``matrix`` as the build of the recipe with ``token`` in this process."""
    with _cache_lock:
        _cache[token] = matrix
        _cache.move_to_end(token)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)


def matrix_for(token: str, recipe: Recipe) -> _oom.Matrix:
    """Return the matrix ``recipe`` describes, rebuilt at most once per process while cached."""
    with _cache_lock:
        m = _cache.get(token)
        if m is not None:
            _cache.move_to_end(token)
            return m
    # Built outside the lock: opening a file may take a while, and two threads
    # building the same recipe at once only cost a duplicate open.
    m = recipe.build()
    remember(token, m)
    return m
