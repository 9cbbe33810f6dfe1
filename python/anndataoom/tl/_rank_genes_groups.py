"""``rank_genes_groups``: scanpy's marker-gene tests with the matrix streamed.

One Rust pass gives every group's moments and non-zero counts (t-tests,
log fold changes, ``pts``); ``wilcoxon`` adds one rank-sum pass
(``kernels/ranks.rs``) that spills the entries to temp files by column band
when they exceed the memory budget, then ranks one band at a time. The
small group × gene tables then go through scanpy's formulas (scipy's Welch
test, the normal approximation of the rank-sum test, statsmodels'
Benjamini-Hochberg) and are stored in ``uns`` exactly as scanpy stores them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from anndataoom import _oom
from anndataoom._distributed import run_pass
from anndataoom._progress import pass_bars
from anndataoom.pp._backed import get_matrix
from anndataoom.pp._hvg import SKIP

__all__ = ["rank_genes_groups"]

_log = logging.getLogger("anndataoom")

_METHODS = ("logreg", "t-test", "wilcoxon", "t-test_overestim_var")
_CORR_METHODS = ("benjamini-hochberg", "bonferroni")
# Memory for the non-zero entries of one wilcoxon column band (a value — 4
# bytes for float32 data, else 8 — and a u32 group each); larger data is
# spilled to temp files (``OOM_TMPDIR``) band by band, never held at once.
BAND_BYTES = 384 << 20
_DTYPES = {"names": "O", "scores": "float32", "logfoldchanges": "float32",
           "pvals": "float64", "pvals_adj": "float64"}


class UnknownGroupsError(ValueError, IndexError):
    """``groups`` names that are not categories (scanpy fails with an IndexError there)."""


class NotCategoricalError(ValueError, AttributeError):
    """A ``groupby`` column that is not categorical (scanpy fails with an AttributeError)."""


class OnlyReferenceError(ValueError, AttributeError):
    """``groups`` that hold only the reference (scanpy fails with an AttributeError)."""


class _Groups:
    """The compared groups and each cell's group id.

    Ids ``0..n-1`` are the selected groups in ``order``; every other cell
    (other categories, NaN) gets id ``n``, so the ids' moments also sum to
    the totals over all cells.
    """

    def __init__(self, adata, groupby: str, groups, reference: str):
        if groupby not in adata.obs.columns:
            raise KeyError(f"groupby={groupby!r} is not a column of adata.obs")
        col = adata.obs[groupby]
        if not isinstance(col.dtype, pd.CategoricalDtype):
            raise NotCategoricalError(
                f"adata.obs[{groupby!r}] must be categorical, not {col.dtype} (strings become "
                "categories when some repeat; every cell in a group of its own cannot be "
                "tested)")
        cats = col.cat.categories
        if reference != "rest" and reference not in cats:
            raise ValueError(f"reference = {reference} needs to be one of groupby = "
                             f"{cats.tolist()}.")
        if groups == "all":
            ids = np.arange(len(cats))
        else:
            missing = [g for g in groups if g not in set(cats.values)]
            if missing:
                raise UnknownGroupsError(f"groups {missing} are not categories of "
                                         f"adata.obs[{groupby!r}]: {cats.tolist()}")
            ids = np.array([np.flatnonzero(cats.values == g)[0] for g in groups])
        self.order = cats[ids]
        counts = col.value_counts()
        too_small = set(self.order) & set(counts.index[counts < 2])
        if too_small:
            raise ValueError(
                f"Could not calculate statistics for groups {', '.join(map(str, too_small))} "
                "since they only contain one sample.")
        lut = np.full(len(cats) + 1, len(ids), dtype=np.uint32)  # code -1 (NaN) → last
        lut[ids] = np.arange(len(ids), dtype=np.uint32)
        self.ids = lut[col.cat.codes.to_numpy()]
        self.ireference = (None if reference == "rest"
                           else int(np.flatnonzero(self.order == reference)[0]))

    @property
    def n(self) -> int:
        return len(self.order)


def _mean_var(s, sq, n):
    """Mean and variance (ddof 1 unless ``n == 1``) from Σx, Σx² over ``n`` rows.

    A gene constant within the rows can round to a variance of -1e-17, whose
    square root is NaN; scanpy then reports score 0 and p-value 1 for a gene
    that may differ strongly. The variance is clipped at 0 instead, which
    gives scipy's ``ttest_ind`` on the values.
    """
    n = np.asarray(n, dtype=np.float64)[:, None]
    mean = s / n
    var = np.maximum(sq / n - mean**2, 0.0)
    return mean, np.where(n != 1, var * n / np.where(n != 1, n - 1, 1), var)


class _Stats:
    """Group moments from one pass; ``*_rest`` = all cells outside each group."""

    def __init__(self, m, g: _Groups):
        r = run_pass(m, _oom.moments, g.ids, g.n + 1, row_args=(0,)).finalize()
        self.non_integer = bool(r["non_integer"])
        n, s, sq, nnz = r["n"], r["sum"], r["sumsq"], r["n_nonzero"]
        self.n_cells = int(n.sum())
        self.n = n[:g.n].astype(np.int64)
        self.mean, self.var = _mean_var(s[:g.n], sq[:g.n], self.n)
        n_rest = self.n_cells - self.n
        self.mean_rest, self.var_rest = _mean_var(s.sum(0) - s[:g.n], sq.sum(0) - sq[:g.n], n_rest)
        self.nnz, self.nnz_all = nnz[:g.n], nnz.sum(0)
        self.pts = self.nnz / self.n[:, None]
        self.pts_rest = (self.nnz_all - self.nnz) / n_rest[:, None]


def _t_test(st: _Stats, g: _Groups, method: str):
    from scipy import stats

    for i in range(g.n):
        if i == g.ireference:
            continue
        if g.ireference is None:
            mean_rest, var_rest, n_other = st.mean_rest[i], st.var_rest[i], st.n_cells - st.n[i]
        else:
            r = g.ireference
            mean_rest, var_rest, n_other = st.mean[r], st.var[r], st.n[r]
        # scanpy's 't-test_overestim_var' gives the rest the group's size
        n_rest = n_other if method == "t-test" else st.n[i]
        with np.errstate(invalid="ignore"):
            scores, pvals = stats.ttest_ind_from_stats(
                mean1=st.mean[i], std1=np.sqrt(st.var[i]), nobs1=int(st.n[i]),
                mean2=mean_rest, std2=np.sqrt(var_rest), nobs2=int(n_rest), equal_var=False)
        # NaN only where both means are equal and both variances 0
        scores[np.isnan(scores)] = 0
        pvals[np.isnan(pvals)] = 1
        yield i, scores, pvals


def _wilcoxon(m, st: _Stats, g: _Groups, tie_correct: bool):
    from scipy import stats

    ids = g.ids
    if g.ireference is not None:
        # only the compared groups and the reference are ranked
        ids = np.where(ids < g.n, ids, SKIP).astype(np.uint32)
    entry_bytes = 8 if m.dtype == "float32" else 12
    budget = max(BAND_BYTES // entry_bytes, 1)
    rank_sum, ties = _oom.rank_sums(m, ids, g.n + 1, st.nnz_all.astype(np.uint64), budget,
                                       g.ireference)
    for i in range(g.n):
        if i == g.ireference:
            continue
        # Python ints and scanpy's order of operations: same floats as scanpy
        n_active = int(st.n[i])
        if g.ireference is None:
            n_other, n_cells = st.n_cells - n_active, st.n_cells
        else:
            n_other = int(st.n[g.ireference])
            n_cells = n_active + n_other
        coef = 1 - ties[i] / (float(n_cells) ** 3 - n_cells) if tie_correct and n_cells >= 2 else 1
        std_dev = np.sqrt(coef * n_active * n_other * (n_cells + 1) / 12.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            # 0/0 where every cell ties (std_dev 0): NaN, scored 0 as scanpy does
            scores = (rank_sum[i] - (n_active * ((n_cells + 1) / 2.0))) / std_dev
        scores[np.isnan(scores)] = 0
        yield i, scores, 2 * stats.distributions.norm.sf(np.abs(scores))


def _top_n(scores, n: int):
    """Return the indices of the ``n`` highest scores, highest first (scanpy's tie order)."""
    part = np.argpartition(scores, -n)[-n:]
    return part[np.argsort(scores[part])[::-1]]


def _adjust(pvals, corr_method: str):
    if corr_method == "bonferroni":
        return np.minimum(pvals * pvals.size, 1.0)
    from statsmodels.stats.multitest import multipletests

    return multipletests(np.where(np.isnan(pvals), 1, pvals), alpha=0.05, method="fdr_bh")[1]


def _tables(results, st: _Stats, g: _Groups, var_names, *, n_genes, rankby_abs, corr_method,
            expm1):
    """Build scanpy's ``uns`` record arrays, one field per compared group."""
    cols: dict[str, dict[str, np.ndarray]] = {k: {} for k in
                                              ("names", "scores", "pvals", "pvals_adj",
                                               "logfoldchanges")}
    for i, scores, pvals in results:
        name = str(g.order[i])
        top = _top_n(np.abs(scores) if rankby_abs else scores, n_genes)
        rest = st.mean_rest[i] if g.ireference is None else st.mean[g.ireference]
        with np.errstate(divide="ignore", invalid="ignore"):
            # NaN where the means are negative (e.g. scaled data), as in scanpy
            lfc = np.log2((expm1(st.mean[i]) + 1e-9) / (expm1(rest) + 1e-9))
        for k, v in (("names", var_names), ("scores", scores), ("pvals", pvals),
                     ("pvals_adj", _adjust(pvals, corr_method)), ("logfoldchanges", lfc)):
            cols[k][name] = np.asarray(v)[top]
    return {k: pd.DataFrame(v).to_records(index=False, column_dtypes=_DTYPES[k])
            for k, v in cols.items()}


def _mask_var(adata, mask_var):
    if mask_var is None:
        return None
    from scanpy.get import _check_mask

    return np.asarray(_check_mask(adata, mask_var, "var"), dtype=bool)


def rank_genes_groups(  # noqa: PLR0913
    adata,
    groupby: str,
    *,
    mask_var=None,
    use_raw: bool | None = None,
    groups: str | Iterable[str] = "all",
    reference: str = "rest",
    n_genes: int | None = None,
    rankby_abs: bool = False,
    pts: bool = False,
    key_added: str | None = None,
    copy: bool = False,
    method: str | None = None,
    corr_method: str = "benjamini-hochberg",
    tie_correct: bool = False,
    layer: str | None = None,
    **kwds,
):
    """Rank genes for characterizing groups (scanpy's ``tl.rank_genes_groups``).

    The matrix is streamed: one pass for the groups' means, variances and
    fractions expressing; ``wilcoxon`` ranks each gene's non-zero values
    (its zeros are one tied run) in one more pass, in column bands of
    bounded memory (spilled to ``OOM_TMPDIR`` when they do not fit).
    Scores, p-values, log fold changes and the stored layout match scanpy,
    so ``sc.get.rank_genes_groups_df`` and ``sc.pl.rank_genes_groups`` work
    on the result.

    Parameters
    ----------
    adata
        An :class:`~anndataoom.AnnDataOOM`, or an in-memory AnnData
        (handed over to scanpy). Expects log-transformed data.
    groupby
        Categorical ``obs`` column defining the groups.
    mask_var
        Boolean mask or ``var`` column name: the genes to test.
    use_raw
        Use ``adata.raw`` (default: when present).
    groups
        Groups to test (``'all'`` or a list); with ``reference='rest'`` the
        rest is still every other cell.
    reference
        ``'rest'`` or a group to compare every group against.
    n_genes
        Genes per group in the tables (default: all).
    rankby_abs
        Rank by the absolute score (stored scores keep their sign).
    pts
        Also store the fraction of cells expressing each gene (``pts``,
        and ``pts_rest`` with ``reference='rest'``).
    key_added
        ``uns`` key (default ``'rank_genes_groups'``).
    copy
        Work on and return a copy.
    method
        ``'t-test'`` (default), ``'t-test_overestim_var'`` or
        ``'wilcoxon'``. ``'logreg'`` fits a model on the whole matrix and
        is not available out of core.
    corr_method
        ``'benjamini-hochberg'`` or ``'bonferroni'``.
    tie_correct
        Tie correction of the ``wilcoxon`` variance.
    layer
        Use this layer instead of X.
    **kwds
        Accepted for scanpy compatibility (``logreg`` options).

    Returns
    -------
    ``None`` (or the copy); ``uns[key_added]`` holds ``params`` and the
    record arrays ``names``, ``scores``, ``pvals``, ``pvals_adj``,
    ``logfoldchanges`` (one field per group, best genes first), and the
    ``pts``/``pts_rest`` data frames when asked.

    Examples
    --------
    >>> import anndataoom as oom
    >>> a = oom.read("pbmc3k_clustered.h5ad")  # doctest: +SKIP
    >>> oom.tl.rank_genes_groups(a, "leiden", method="wilcoxon")  # doctest: +SKIP
    """
    if use_raw is None:
        use_raw = adata.raw is not None
    elif use_raw and adata.raw is None:
        raise ValueError("Received `use_raw=True`, but `adata.raw` is empty.")
    if layer is not None and use_raw:
        raise ValueError("Cannot specify `layer` and have `use_raw=True`.")
    m = get_matrix(adata, layer, use_raw)
    if m is None:
        import scanpy as sc

        return sc.tl.rank_genes_groups(
            adata, groupby, mask_var=mask_var, use_raw=use_raw, groups=groups,
            reference=reference, n_genes=n_genes, rankby_abs=rankby_abs, pts=pts,
            key_added=key_added, copy=copy, method=method, corr_method=corr_method,
            tie_correct=tie_correct, layer=layer, **kwds)
    mask = _mask_var(adata, mask_var)
    method = "t-test" if method is None else method
    if "only_positive" in kwds:
        rankby_abs = not kwds.pop("only_positive")
    if method not in _METHODS:
        raise ValueError(f"Method must be one of {set(_METHODS)}.")
    if method == "logreg":
        raise NotImplementedError(
            "method='logreg' fits a logistic regression on the whole matrix and is not "
            "available out of core; load the data (`adata.to_memory()`) and use "
            "scanpy.tl.rank_genes_groups.")
    if corr_method not in _CORR_METHODS:
        raise ValueError(f"Correction method must be one of {set(_CORR_METHODS)}.")
    if (isinstance(groups, str) and groups != "all") or isinstance(groups, int):
        raise ValueError("Specify a sequence of groups")
    if groups != "all":
        groups = [str(x) if isinstance(x, int) else x for x in groups]
        if reference != "rest" and reference not in groups:
            groups.append(reference)
        if reference != "rest" and all(x == reference for x in groups):
            raise OnlyReferenceError(f"groups={groups!r} holds only the reference {reference!r}: "
                             "give at least one other group to compare with it")

    adata = adata.copy() if copy else adata
    adata.strings_to_categoricals()
    g = _Groups(adata, groupby, groups, reference)
    var_names = (adata.raw if use_raw else adata).var_names
    if mask is not None:
        m = m.subset(None, np.flatnonzero(mask).astype(np.int64))
        var_names = var_names[mask]
    key_added = "rank_genes_groups" if key_added is None else key_added
    out = {"params": dict(groupby=groupby, reference=reference, method=method, use_raw=use_raw,
                          layer=layer, corr_method=corr_method)}
    with pass_bars("rank_genes_groups"):
        st = _Stats(m, g)
        if not st.non_integer:
            _log.warning("It seems you use rank_genes_groups on the raw count data. "
                         "Please logarithmize your data before calling rank_genes_groups.")
        results = (_wilcoxon(m, st, g, tie_correct) if method == "wilcoxon"
                   else _t_test(st, g, method))
        base = adata.uns.get("log1p", {}).get("base")
        factor = 1.0 if base is None else np.log(base)
        n_top = len(var_names) if n_genes is None else min(n_genes, len(var_names))
        tables = _tables(results, st, g, var_names, corr_method=corr_method, n_genes=n_top,
                         rankby_abs=rankby_abs, expm1=lambda x: np.expm1(x * factor))
    if pts:
        names = [str(x) for x in g.order]
        out["pts"] = pd.DataFrame(st.pts.T, index=var_names, columns=names)
        if g.ireference is None:
            out["pts_rest"] = pd.DataFrame(st.pts_rest.T, index=var_names, columns=names)
    out.update(tables)
    # stored only when complete: a failed pass leaves no half record behind
    adata.uns[key_added] = out
    return adata if copy else None
