"""No public path densifies: every item of the no-landmines issue, checked by result type and peak RSS.

A child process opens a generated file whose dense X (400 MB) is ~100× its
sparse size, walks every path (scipy methods on X, lazy transposes and
elementwise ops, anndata.concat / concatenate, refused scanpy functions,
to_df / oom_guard above the cap, oom.read's keywords) and reports each
result's type and its peak RSS growth (``ru_maxrss``) after the imports.
Densifying X anywhere would add ≥ 400 MB; the bound is a quarter of that.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from anndataoom.testing import gen_h5ad

N_OBS, N_VARS, DENSITY = 40_000, 2_500, 0.005
DENSE_BYTES = N_OBS * N_VARS * 4

CHILD = r"""
import json, os, resource, sys, warnings
import numpy as np, anndata as ad, scanpy as sc, scipy.sparse as sp
import scanpy.get, scanpy.experimental, scanpy.plotting  # imported before the baseline
import matplotlib; matplotlib.use("Agg")
import anndataoom as oom

warnings.simplefilter("ignore")
path, path2 = sys.argv[1], sys.argv[2]
a, b = oom.read(path), oom.read(path2)
a.obs["g"] = (np.arange(a.n_obs) % 3).astype(str)
rng = np.random.default_rng(0)
v, w, M = rng.random(a.n_vars), rng.random(a.n_obs), rng.random((a.n_vars, 2))
oom.pp.calculate_qc_metrics(a)  # warm the Rust pools and caches before the baseline
results = []

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

base = peak()

def check(name, fn):
    try:
        r = fn()
        kind = type(r).__name__
        if hasattr(r, "X"):
            kind += "/" + type(r.X).__name__
    except Exception as e:  # noqa: BLE001 - reported to the parent
        kind = "raised " + type(e).__name__
    results.append((name, kind, peak() - base))

X = a.X
for ax in (None, 0, 1):
    for m in ("max", "min", "mean", "var", "sum", "getnnz", "count_nonzero"):
        check(f"X.{m}(axis={ax})", lambda: getattr(X, m)(axis=ax))
    check(f"X.T.sum(axis={ax})", lambda: X.T.sum(axis=ax))
check("X @ v", lambda: X @ v)
check("X @ M", lambda: X @ M)
check("w @ X", lambda: w @ X)
check("X.T @ w", lambda: X.T @ w)
check("X.T", lambda: X.T)
check("X.multiply(v)", lambda: X.multiply(v))
check("X.multiply(v).sum()", lambda: X.multiply(v).sum())
check("X.power(2)", lambda: X.power(2))
check("X.power(2).max()", lambda: X.power(2).max())
check("a.T", lambda: a.T)
check("a.T.X.sum(axis=0)", lambda: a.T.X.sum(axis=0))
check("ad.concat", lambda: ad.concat([a, b], label="batch"))
check("ad.concat.X.sum", lambda: ad.concat([a, b], join="outer").X.sum(axis=0))
check("a.concatenate(b)", lambda: a.concatenate(b))
check("sc.pp.sqrt", lambda: sc.pp.sqrt(a))
check("sc.pp.log1p", lambda: sc.pp.log1p(a))
check("sc.pp.normalize_total", lambda: sc.pp.normalize_total(a))
check("sc.pp.combat", lambda: sc.pp.combat(a, key="g"))
check("sc.pp.downsample_counts", lambda: sc.pp.downsample_counts(a, counts_per_cell=5))
check("sc.get.aggregate", lambda: sc.get.aggregate(a, by="g", func="sum"))
check("sc.tl.rank_genes_groups", lambda: sc.tl.rank_genes_groups(a, "g"))
check("sc.pl.highest_expr_genes", lambda: sc.pl.highest_expr_genes(a, show=False))
check("normalize_pearson_residuals",
      lambda: sc.experimental.pp.normalize_pearson_residuals(a))
check("X + 1", lambda: X + 1)
check("X == 0", lambda: X == 0)
check("X != 0", lambda: X != 0)
check("oom.read(bogus=1)", lambda: oom.read(path, bogus=1))
os.environ["ANNDATAOOM_MAX_DENSE_BYTES"] = str(50 << 20)
check("a.to_df() above the cap", lambda: a.to_df())
check("np.asarray(X) above the cap", lambda: np.asarray(X))
os.environ["ANNDATAOOM_MAX_DENSE_BYTES"] = str(4 << 20)  # below X's 4.3 MB sparse size
check("oom_guard above the cap", lambda: oom.oom_guard()(sc.pp.normalize_total)(a))
check("oom_guard(a) context above the cap", lambda: oom.oom_guard(a).__enter__())
check("ad.concat mixed above the cap", lambda: ad.concat([a, a[:10].to_memory()]))
state = dict(uns=sorted(a.uns), X=type(a.X).__name__, obs=sorted(a.obs.columns))
print(json.dumps(dict(results=results, growth=peak() - base, state=state)))
"""

#: what each path must give: a lazy result, a streamed in-memory answer, or a refusal
EXPECTED = {
    **{f"X.{m}(axis={ax})": ("float32" if ax is None and m in ("max", "min", "mean", "var",
                                                                "sum") else None)
       for ax in (None, 0, 1)
       for m in ("max", "min", "mean", "var", "sum", "getnnz", "count_nonzero")},
    "X @ v": "ndarray", "X @ M": "ndarray", "w @ X": "ndarray", "X.T @ w": "ndarray",
    "X.T": "TransposedArray", "X.multiply(v)": "TransformedBackedArray",
    "X.power(2)": "TransformedBackedArray", "a.T": "AnnDataOOM/TransposedArray",
    "X.multiply(v).sum()": "float64", "X.power(2).max()": "float32",
    "a.T.X.sum(axis=0)": "ndarray", "ad.concat": "AnnDataOOM/BackedArray",
    "ad.concat.X.sum": "ndarray", "a.concatenate(b)": "AnnDataOOM/BackedArray",
    "X + 1": "raised InMemoryRequiredError",
    "X == 0": "raised InMemoryRequiredError", "X != 0": "raised InMemoryRequiredError",
    "oom.read(bogus=1)": "raised TypeError",
}


@pytest.fixture(scope="module")
def sparse_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("nodense")
    paths = [d / "a.h5ad", d / "b.h5ad"]
    for i, p in enumerate(paths):
        gen_h5ad(p, N_OBS, N_VARS, density=DENSITY, seed=i, obs_extra=False)
    size = paths[0].stat().st_size
    assert DENSE_BYTES >= 20 * size, (DENSE_BYTES, size)
    return paths


def test_no_path_densifies(sparse_files):
    r = subprocess.run([sys.executable, "-c", CHILD, *map(str, sparse_files)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    got = {name: kind for name, kind, _ in out["results"]}
    for name, kind in got.items():
        want = EXPECTED.get(name)
        if name.startswith(("sc.", "normalize_pearson")) or "above the cap" in name:
            want = "raised InMemoryRequiredError"
        if want is None:  # reductions: scipy's types (ndarray, coo_matrix, numpy/int scalars)
            assert kind in ("ndarray", "coo_matrix", "int", "int64", "float32"), (name, kind)
        else:
            assert kind == want, (name, kind, want)
    # the refused calls left nothing behind: no half-written uns, X still lazy
    assert out["state"]["X"] == "BackedArray"
    assert "rank_genes_groups" not in out["state"]["uns"]
    top = max(g for _, _, g in out["results"])
    first = next(n for n, _, g in out["results"] if g == top)
    assert out["growth"] < DENSE_BYTES / 4, (
        f"peak RSS grew by {out['growth'] / 2**20:.0f} MiB, first reached at {first}")
