"""``scale``: per-gene mean/std from one pass, then a lazy z-score (+ clip)."""

from __future__ import annotations

import numpy as np

from anndataoom import _distributed as passes
from anndataoom import _oom
from anndataoom._progress import with_pass_bars
from anndataoom.pp._backed import get_array, set_matrix, transform
from anndataoom.pp._docs import doc_adata, doc_layer, doc_lazy, doc_params

__all__ = ["scale"]

SKIP = np.iinfo(np.uint32).max


def mean_std(x, mask=None):
    """Per-column mean and std as scanpy's ``scale``: ddof=1, std 0 → 1.

    Without a mask, moments an earlier pass left on ``x`` (seurat's HVG) are
    used instead of a pass.
    """
    known = getattr(x, "_col_moments", None)
    if mask is None and known is not None:
        mean, var = known.mean.copy(), known.var.copy()
    else:
        groups = None if mask is None else np.where(mask, 0, SKIP).astype(np.uint32)
        r = passes.moments(x, groups, 1)
        mean, var = r["mean"][0], r["var"][0]
    # A constant column's variance (sums of squares minus the squared mean)
    # can round below 0; its std is then 0 → 1, not NaN (NaN data stays NaN).
    with np.errstate(invalid="ignore"):
        std = np.sqrt(np.maximum(var, 0))
    std[std == 0] = 1
    return mean, std


def _obs_mask(adata, mask_obs):
    if isinstance(mask_obs, str):
        mask = adata.obs[mask_obs].to_numpy()
    else:
        mask = np.asarray(mask_obs)
    if mask.dtype != bool or mask.shape != (adata.n_obs,):
        raise ValueError(f"mask_obs must be a boolean array of length {adata.n_obs}")
    return mask


@doc_params(adata=doc_adata, layer=doc_layer, lazy=doc_lazy)
@with_pass_bars("scale")
def scale(
    data,
    *,
    zero_center: bool = True,
    max_value: float | None = None,
    copy: bool = False,
    layer: str | None = None,
    obsm: str | None = None,
    mask_obs=None,
):
    """Scale each gene to unit variance and (optionally) zero mean (scanpy's ``scale``).

    Parameters
    ----------
    data
        An :class:`~anndataoom.AnnDataOOM` (``X`` stays on disk) or an in-memory
        :class:`~anndata.AnnData` (handed over to scanpy).
    zero_center
        Subtract the gene mean (blocks become dense when read).
    max_value
        Clip to this value (and to ``-max_value`` when zero-centering).
    copy
        Work on and return a copy.
    {layer}
    obsm
        Scale ``adata.obsm[obsm]`` (in memory, with scanpy) instead.
    mask_obs
        Boolean mask or name of a boolean ``obs`` column: only these cells
        are used for the statistics and scaled.

    Returns
    -------
    ``None`` or the copy. Stores ``var['mean']`` and ``var['std']`` (std with
    ddof=1, zeros replaced by 1), or ``mean with mask``/``mean of <key>``
    variants as scanpy.

    {lazy}
    """
    if hasattr(data, "matrix"):  # a lazy matrix on its own
        mean, std = mean_std(data)
        return transform(data, _oom.lazy_scale, mean, std, zero_center,
                         None if max_value is None else float(max_value))
    if not hasattr(data, "var"):
        import scanpy as sc

        return sc.pp.scale(data, zero_center=zero_center, max_value=max_value, copy=copy,
                           mask_obs=mask_obs)
    adata = data.copy() if copy else data
    if obsm is not None:
        import scanpy as sc

        adata.obsm[obsm] = sc.pp.scale(np.array(adata.obsm[obsm]), zero_center=zero_center,
                                       max_value=max_value, copy=True)
        return adata if copy else None
    x = get_array(adata, layer)
    if x is None:
        import scanpy as sc

        sc.pp.scale(adata, zero_center=zero_center, max_value=max_value, layer=layer,
                    mask_obs=mask_obs)
        return adata if copy else None
    names = ("mean", "std")
    mask = None
    if mask_obs is not None:
        names = ((f"mean of {mask_obs}", f"std of {mask_obs}") if isinstance(mask_obs, str)
                 else ("mean with mask", "std with mask"))
        mask = _obs_mask(adata, mask_obs)
    mean, std = mean_std(x, mask)
    out = transform(x, _oom.lazy_scale, mean, std, zero_center,
                    None if max_value is None else float(max_value), mask)
    adata.var[names[0]] = mean
    adata.var[names[1]] = std
    set_matrix(adata, out, layer)
    return adata if copy else None
