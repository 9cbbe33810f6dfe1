"""``filter_rank_genes_groups``: scanpy's marker filter with the fractions from one pass.

scanpy's own function reads each group's columns twice (cells in, cells
out) as dense blocks unless ``rank_genes_groups`` stored ``pts``; here
every group's fraction expressing and mean come from one streamed moments
pass, and the ``uns`` tables are built as scanpy builds them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from anndataoom._core._guard import is_oom
from anndataoom._progress import pass_bars
from anndataoom.pp._backed import get_matrix
from anndataoom.tl._rank_genes_groups import _Stats

__all__ = ["filter_rank_genes_groups"]


class _Masks:
    """Groups given as cell masks, in the form :class:`_Stats` takes (``ids``, ``n``).

    Cells in no group get the last id, so the rest of each group is every other cell.
    """

    def __init__(self, n_obs: int, in_group: list[np.ndarray]):
        self.n = len(in_group)
        self.ids = np.full(n_obs, self.n, dtype=np.uint32)
        for i, mask in enumerate(in_group):
            self.ids[mask] = i


def filter_rank_genes_groups(  # noqa: PLR0913
    adata,
    *,
    key: str | None = None,
    groupby: str | None = None,
    use_raw: bool | None = None,
    key_added: str = "rank_genes_groups_filtered",
    min_in_group_fraction: float = 0.25,
    min_fold_change: float = 1,
    max_out_group_fraction: float = 0.5,
    compare_abs: bool = False,
) -> None:
    """Filter the genes of ``rank_genes_groups`` (scanpy's ``tl.filter_rank_genes_groups``).

    A gene stays in a group's list when more than ``min_in_group_fraction``
    of the group's cells express it, fewer than ``max_out_group_fraction``
    of the other cells do, and its log2 fold change exceeds
    ``min_fold_change``. Filtered names become NaN, so the tables keep their
    shape. Fractions and fold changes come from ``uns[key]`` when it holds
    them (``pts=True``, ``reference='rest'``); otherwise one streamed pass
    over X (or ``raw``) computes every group's at once. A cell counts as
    expressing a gene when its value is not 0.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM`, or an in-memory AnnData
        (handed over to scanpy).
    key
        ``uns`` key of the ``rank_genes_groups`` result (default
        ``'rank_genes_groups'``).
    groupby
        ``obs`` column of the groups (default: the one ranked by).
    use_raw
        Use ``adata.raw`` (default: as ranked).
    key_added
        ``uns`` key of the result.
    min_in_group_fraction, min_fold_change, max_out_group_fraction
        The thresholds (strict inequalities, as scanpy).
    compare_abs
        Compare the absolute log fold change with ``min_fold_change``.

    Returns
    -------
    ``None``; ``uns[key_added]`` is a copy of ``uns[key]`` whose ``names``
    hold NaN for the filtered genes; scanpy's rank_genes_groups plots take
    it with ``key=key_added``.
    """
    kw = dict(key=key, groupby=groupby, use_raw=use_raw, key_added=key_added,
              min_in_group_fraction=min_in_group_fraction, min_fold_change=min_fold_change,
              max_out_group_fraction=max_out_group_fraction, compare_abs=compare_abs)
    if not is_oom(adata):
        return _scanpy(adata, **kw)
    key = "rank_genes_groups" if key is None else key
    if key not in adata.uns:
        raise KeyError(f"adata.uns has no {key!r}: run oom.tl.rank_genes_groups first")
    ranked = adata.uns[key]
    params = ranked["params"]
    groupby = params["groupby"] if groupby is None else groupby
    use_raw = params["use_raw"] if use_raw is None else use_raw
    same = (params["groupby"] == groupby and params["reference"] == "rest"
            and params["use_raw"] == use_raw)
    names = pd.DataFrame(ranked["names"])
    if same and "logfoldchanges" in ranked and "pts_rest" in ranked:
        frac_in = np.column_stack([ranked["pts"][c].loc[names[c]] for c in names.columns])
        frac_out = np.column_stack([ranked["pts_rest"][c].loc[names[c]] for c in names.columns])
        fold = pd.DataFrame(ranked["logfoldchanges"]).to_numpy()
    else:
        if use_raw and adata.raw is None:
            raise ValueError("Received `use_raw=True`, but `adata.raw` is empty.")
        if get_matrix(adata, None, use_raw) is None:  # X set in memory: scanpy reads it
            return _scanpy(adata, **kw)
        frac_in, frac_out, fold = _from_pass(adata, names, ranked, groupby, use_raw, same)
    if compare_abs:
        fold = np.abs(fold)
    keep = ((frac_in > min_in_group_fraction) & (frac_out < max_out_group_fraction)
            & (fold > min_fold_change))
    out = dict(ranked)
    out["names"] = names.where(keep).to_records(index=False)
    adata.uns[key_added] = out
    return None


def _scanpy(adata, **kw) -> None:
    import scanpy as sc

    return sc.tl.filter_rank_genes_groups(adata, **kw)


def _from_pass(adata, names: pd.DataFrame, ranked: dict, groupby: str, use_raw: bool,
               same: bool):
    """Fractions in/out and log fold changes of ``names``' genes, from one pass over X or raw."""
    if groupby not in adata.obs.columns:
        raise KeyError(f"groupby={groupby!r} is not a column of adata.obs")
    m = get_matrix(adata, None, use_raw)
    var_names = (adata.raw if use_raw else adata).var_names
    cols = var_names.get_indexer(names.to_numpy().ravel()).reshape(names.shape)
    if (cols < 0).any():
        missing = sorted({str(g) for g in names.to_numpy()[cols < 0]})
        raise KeyError(f"genes of uns[...]['names'] not in var_names: {missing[:5]}")
    col = adata.obs[groupby]
    in_group = [(col == c).to_numpy() for c in names.columns]
    with pass_bars("filter_rank_genes_groups"):
        with np.errstate(divide="ignore", invalid="ignore"):  # an empty group: NaN, as scanpy
            st = _Stats(m, _Masks(m.shape[0], in_group))
    pts, pts_out, mean, mean_out = st.pts, st.pts_rest, st.mean, st.mean_rest
    pick = np.arange(names.shape[1])
    frac_in, frac_out = pts[pick, cols], pts_out[pick, cols]
    if same and "logfoldchanges" in ranked:
        return frac_in, frac_out, pd.DataFrame(ranked["logfoldchanges"]).to_numpy()
    base = adata.uns.get("log1p", {}).get("base")
    factor = 1.0 if base is None else np.log(base)
    with np.errstate(divide="ignore", invalid="ignore"):
        fold = np.log2((np.expm1(mean[pick, cols] * factor) + 1e-9)
                       / (np.expm1(mean_out[pick, cols] * factor) + 1e-9))
    return frac_in, frac_out, fold
