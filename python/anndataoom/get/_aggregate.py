"""``aggregate``: scanpy's ``get.aggregate`` (pseudobulk sums, means, …) in one streamed pass.

Grouping observations is a per-group moments pass over X in Rust (sums,
sums of squares and non-zero counts per group and gene, mergeable states
combined in row order, so results do not depend on threading); grouping
variables (``axis="var"``) is a per-row pass over groups of columns.  The
small results are then finished with scanpy's formulas and dtypes and
laid out as scanpy lays them out: an AnnData with one layer per function,
one row per (combination of) group(s) present in the data.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import anndata
import numpy as np

from anndataoom import _distributed as passes
from anndataoom import _oom
from anndataoom._core._guard import unsupported

__all__ = ["aggregate"]

_FUNCS = ("count_nonzero", "mean", "sum", "var", "median")
#: Group id the kernels leave out (masked rows/columns).
_SKIP = np.iinfo(np.uint32).max


def _in_memory_shell(adata, layer, obsm, varm):
    """Return an in-memory AnnData: ``adata``'s annotations and the in-memory array asked for."""
    shell = anndata.AnnData(obs=adata.obs, var=adata.var)
    if obsm is not None:
        shell.obsm[obsm] = adata.obsm[obsm]
    if varm is not None:
        shell.varm[varm] = adata.varm[varm]
    if layer is not None:
        shell.layers[layer] = adata.layers[layer]
    return shell


def _funcs(func) -> set[str]:
    funcs = {func} if isinstance(func, str) else set(func)
    if unknown := funcs - set(_FUNCS):
        raise ValueError(f"func {unknown} is not one of {_FUNCS}")
    if "median" in funcs:
        raise unsupported(
            "aggregate(func='median') (a median needs each group's values sorted in memory)")
    return funcs


def _finish(funcs, s, sq, nz, counts, data_dtype, masked: bool, dof: int) -> dict:
    """Scanpy's results (values and dtypes) from per-group sums, squares and non-zero counts.

    scanpy multiplies by a sparse indicator whose weights are float64
    (float32 with a mask), so sums and counts take that type combined with
    X's; means and variances divide by all the group's members, masked or not.
    """
    weight = np.dtype(np.float32 if masked else np.float64)
    sum_dtype = np.result_type(weight, data_dtype)
    n = counts[:, None].astype(np.float64)
    out = {}
    if "sum" in funcs:
        out["sum"] = s.astype(sum_dtype)
    if "count_nonzero" in funcs:
        out["count_nonzero"] = nz.astype(weight)
    mean = s.astype(sum_dtype) / counts[:, None]
    if "mean" in funcs and "var" not in funcs:
        out["mean"] = mean
    if "var" in funcs:
        mean_sq = sq.astype(sum_dtype) / counts[:, None]
        sq_mean = mean**2
        var = mean_sq - sq_mean
        precision = 2 << (42 if np.dtype(data_dtype) == np.float64 else 20)
        var[precision * var < sq_mean] = 0
        if dof != 0:
            with np.errstate(divide="ignore", invalid="ignore"):
                var *= (n / (n - dof))
        out["var"] = var
        if "mean" in funcs:
            out["mean"] = mean
    return out


def aggregate(
    adata,
    by: str | Collection[str],
    func: str | Iterable[str],
    *,
    axis=None,
    mask: np.ndarray | str | None = None,
    dof: int = 1,
    layer: str | None = None,
    obsm: str | None = None,
    varm: str | None = None,
) -> anndata.AnnData:
    """Aggregate the data matrix by categorical groups (scanpy's ``get.aggregate``).

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM` (X or the layer is streamed once
        from disk) or an in-memory AnnData (handed over to scanpy).
    by
        Column(s) of ``obs`` (``axis="obs"``) or ``var`` (``axis="var"``)
        to group by; several give one group per combination present.
    func
        ``"sum"``, ``"mean"``, ``"var"``, ``"count_nonzero"`` or a list of
        them (``"median"`` needs the data in memory and is refused).
    axis
        ``"obs"``/``0`` (default) groups cells, ``"var"``/``1`` genes.
    mask
        Boolean mask (or the name of a boolean column) along ``axis``:
        only ``True`` entries are summed (means and variances still divide
        by the whole group, as scanpy).
    dof
        Delta degrees of freedom of the variance.
    layer, obsm, varm
        Aggregate ``layers[layer]`` instead of X, or the in-memory
        ``obsm``/``varm`` array (handed over to scanpy).

    Returns
    -------
    anndata.AnnData
        In memory (small: groups × genes), with one layer per function,
        ``obs`` (or ``var``) labelling the groups, as scanpy's result.

    Raises
    ------
    ValueError
        For an unknown ``func``, or missing values in a ``by`` column
        (scanpy cannot group those either).
    TypeError
        When more than one of ``layer``, ``obsm``, ``varm`` is given.
    InMemoryRequiredError
        For ``func="median"`` on a lazy matrix.
    """
    import scanpy as sc

    if sum(p is not None for p in (varm, obsm, layer)) > 1:
        raise TypeError("Please only provide one (or none) of varm, obsm, or layer")
    x = adata.X if layer is None else adata.layers[layer]
    if obsm is not None or varm is not None or not hasattr(x, "matrix"):
        if hasattr(x, "matrix") or hasattr(adata, "_is_oom"):
            adata = _in_memory_shell(adata, layer, obsm, varm)
        return sc.get.aggregate(adata, by, func, axis=axis, mask=mask, dof=dof, layer=layer,
                                obsm=obsm, varm=varm)
    from scanpy._utils import _resolve_axis
    from scanpy.get._aggregated import _combine_categories
    from scanpy.get.get import _check_mask

    funcs = _funcs(func)
    if axis is None:
        axis = 0
    axis, axis_name = _resolve_axis(axis)
    mask = _check_mask(adata, mask, axis_name)
    categorical, labels = _combine_categories(getattr(adata, axis_name), by)
    codes = np.asarray(categorical.codes)
    if (codes < 0).any():
        keys = [by] if isinstance(by, str) else list(by)
        raise ValueError(f"{axis_name}{keys} has missing values: every entry needs a group "
                         "to aggregate (scanpy cannot group them either); drop or fill them")
    n_groups = len(categorical.categories)
    groups = codes.astype(np.uint32)
    if mask is not None:
        groups[~np.asarray(mask, dtype=bool)] = _SKIP
    if axis == 0:
        mo = passes.moments(x, groups, n_groups)
        s, sq, nz = mo["sum"], mo["sumsq"], mo["n_nonzero"]
    else:
        s, sq, nz = (np.asarray(a).T for a in _oom.col_group_sums(x.matrix, groups, n_groups))
    counts = np.bincount(codes, minlength=n_groups)
    layers = _finish(funcs, s, sq, nz, counts, x.dtype, mask is not None, dof)
    other = adata.var if axis == 0 else adata.obs
    result = anndata.AnnData(layers=layers, obs=labels, var=other.copy())
    return result.T if axis == 1 else result
