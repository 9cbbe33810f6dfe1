"""``LazyMatrix``: what every lazy matrix shares (axis handling, refused operators, numpy protocol).

:class:`~anndataoom.BackedArray` (row blocks of a stored matrix) and
:class:`~anndataoom._core._transpose.TransposedArray` (its lazy transpose)
derive from it; code that must keep a matrix lazy tests ``isinstance(x, LazyMatrix)``.
"""

from __future__ import annotations

import numpy as np

from anndataoom._core._guard import check_dense_size, guard_scanpy, unsupported

__all__ = ["LazyMatrix", "is_int", "norm_axis"]


def is_int(i) -> bool:
    """Return whether ``i`` is an integer that is not a bool."""
    return isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))


def norm_axis(axis) -> int | None:
    """``None``, 0 or 1 for numpy's axis forms on a 2-D array (negative, 1-tuples, both axes)."""
    if axis is None:
        return None
    if isinstance(axis, tuple):
        if sorted(a % 2 for a in axis) == [0, 1]:
            return None
        if len(axis) == 1:
            axis = axis[0]
    if not is_int(axis) or not -2 <= int(axis) < 2:
        raise ValueError(f"axis {axis!r} is out of bounds for a 2-D array")
    return int(axis) % 2


class LazyMatrix:
    """Base of the lazy, read-only 2-D matrices.

    Subclasses provide ``shape``, ``dtype`` and ``toarray()``.  Arithmetic
    operators and in-place changes raise
    :class:`~anndataoom.InMemoryRequiredError`; ``np.asarray`` works up to
    ``ANNDATAOOM_MAX_DENSE_BYTES``.
    """

    shape: tuple[int, int]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        """Always 2."""
        return 2

    @property
    def size(self) -> int:
        """``n_rows * n_cols``."""
        r, c = self.shape
        return r * c

    def __len__(self) -> int:
        return self.shape[0]

    @staticmethod
    def _axis(axis) -> int | None:
        return norm_axis(axis)

    def _keepdims(self, r, axis):
        ax = norm_axis(axis)
        if ax is None:
            return np.asarray(r).reshape(1, 1)
        r = np.asarray(r)
        return r.reshape(1, -1) if ax == 0 else r.reshape(-1, 1)

    def toarray(self) -> np.ndarray:  # pragma: no cover - every subclass overrides it
        """Return the whole matrix as a dense ``ndarray``."""
        raise NotImplementedError

    def todense(self) -> np.matrix:
        """Return the whole matrix as a dense ``np.matrix``, as scipy's ``todense``."""
        return self.toarray().view(np.matrix)  # as scipy: a view, without numpy's warning

    def tolist(self) -> list:
        """Return nested lists of the values, as numpy's ``tolist`` (dense-size limited)."""
        return np.asarray(self).tolist()

    def __array__(self, dtype=None, copy=None):
        """Dense ndarray (numpy protocol); refused above ``ANNDATAOOM_MAX_DENSE_BYTES``."""
        guard_scanpy("loading the whole matrix")
        check_dense_size(self.shape, self.dtype if dtype is None else dtype)
        a = self.toarray()
        return a if dtype is None else a.astype(dtype, copy=False)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """Apply numpy ufuncs on a dense copy (size-limited); never in place."""
        outs = kwargs.get("out") or ()
        if any(isinstance(o, LazyMatrix) for o in outs):
            raise unsupported(f"in-place np.{ufunc.__name__}")
        if ufunc is np.matmul and method == "__call__" and not kwargs and len(inputs) == 2:
            # `v @ X` with an ndarray v reaches numpy first: stream it instead of densifying X
            left, right = inputs
            return left.__matmul__(right) if left is self else right.__rmatmul__(left)
        guard_scanpy(f"np.{ufunc.__name__}")
        inputs = tuple(np.asarray(x) if isinstance(x, LazyMatrix) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def _refuse(self, *args, op: str = "arithmetic", **kwargs):
        hint = {"'*'": "X.multiply(v) is the lazy elementwise product.",
                "'**'": "X.power(p) is the lazy elementwise power."}.get(op, "")
        raise unsupported(f"the {op} operator", hint=hint)

    def __setitem__(self, key, value):
        raise unsupported("assigning into a lazy matrix (X, a layer or raw.X)")

    def __add__(self, other):
        self._refuse(op="'+'")

    def __sub__(self, other):
        self._refuse(op="'-'")

    def __mul__(self, other):
        self._refuse(op="'*'")

    def __truediv__(self, other):
        self._refuse(op="'/'")

    def __pow__(self, other):
        self._refuse(op="'**'")

    def __gt__(self, other):
        self._refuse(op="'>'")

    def __ge__(self, other):
        self._refuse(op="'>='")

    def __lt__(self, other):
        self._refuse(op="'<'")

    def __le__(self, other):
        self._refuse(op="'<='")

    def __neg__(self):
        self._refuse(op="'-'")

    # Without these, object identity answers `X == 0` with a silent False.
    def __eq__(self, other):
        self._refuse(op="'=='")

    def __ne__(self, other):
        self._refuse(op="'!='")

    __hash__ = object.__hash__

    __radd__ = __iadd__ = __add__
    __rsub__ = __isub__ = __sub__
    __rmul__ = __imul__ = __mul__
    __rtruediv__ = __itruediv__ = __truediv__
