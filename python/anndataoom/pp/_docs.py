"""Shared parameter descriptions for the ``pp`` docstrings."""

import re
import textwrap

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

doc_dist_params = """\
theta
    Negative-binomial overdispersion (> 0).
clip
    Clip residuals to ``±clip``; ``None`` = ``sqrt(n_obs)``."""

doc_check_values = """\
check_values
    Warn when the values are not non-negative integers."""

doc_lazy = """\
Notes
-----
The result is lazy: the transform is recorded in the matrix's plan and
applied block by block (in Rust, on all cores) whenever the data is read,
written or consumed by a statistic. ``X`` is never loaded whole."""


def doc_params(**kwds):
    """Fill ``{name}`` fields of the decorated function's docstring.

    Each text is indented like its placeholder, so a multi-line section stays
    inside the docstring's indentation (rendered docs need it).
    """

    def dec(obj):
        doc = obj.__doc__
        filled = {}
        for name, text in kwds.items():
            m = re.search(r"^([ \t]*)\{" + name + r"\}", doc, re.M)
            indent = m.group(1) if m else ""
            filled[name] = textwrap.indent(text, indent)[len(indent):]
        obj.__doc__ = doc.format(**filled)
        return obj

    return dec
