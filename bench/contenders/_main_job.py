"""The README's main job (``anndataoom run``'s steps) as a timed contender.

Both main-job contenders run our QC → filters → normalize → log1p → HVG →
scale → PCA, so the graph steps start from the same ``X_pca``; they differ
in ``--embedding``: ours (``oom.pp.neighbors``, ``oom.tl.umap``,
``oom.tl.leiden``) or scanpy's. Each step of ``anndataoom.cli.run`` is a
stage here, then a ``quality`` stage (not part of the job) measures the kNN
recall and the UMAP neighbour preservation on ``QUALITY_CELLS`` random cells.
"""

from __future__ import annotations

from contextlib import ExitStack

from _stages import emit, path_arg, stage

#: Cells sampled for the quality numbers (exact neighbours are computed for them).
QUALITY_CELLS = 2000
#: k of the recall and preservation numbers.
QUALITY_K = 15


def _exact_knn(ref, queries, k: int):
    """Return the ``k`` nearest rows of ``ref`` to each query row (self included)."""
    import numpy as np

    ref = np.asarray(ref, dtype=np.float64)
    sq = (ref * ref).sum(1)
    out = []
    for q in np.array_split(np.asarray(queries, dtype=np.float64), max(1, len(queries) // 250)):
        d = sq[None, :] - 2.0 * (q @ ref.T)
        part = np.argpartition(d, k, axis=1)[:, :k]
        order = np.take_along_axis(d, part, 1).argsort(1)
        out.append(np.take_along_axis(part, order, 1))
    return np.concatenate(out)


def quality(a, seed: int = 0) -> dict:
    """Measure the kNN recall@k (graph vs exact in X_pca) and UMAP preservation."""
    import numpy as np

    x = a.obsm["X_pca"]
    rng = np.random.default_rng(seed)
    cells = np.sort(rng.choice(a.n_obs, size=min(QUALITY_CELLS, a.n_obs), replace=False))
    truth = _exact_knn(x, x[cells], QUALITY_K)
    out = {}
    d = a.obsp["distances"].tocsr()
    found = [len((set(d.indices[d.indptr[c]:d.indptr[c + 1]]) | {c}) & set(t))
             for c, t in zip(cells, truth, strict=True)]
    out["knn_recall"] = float(np.mean(found) / QUALITY_K)
    if "X_umap" in a.obsm:
        emb = _exact_knn(a.obsm["X_umap"], a.obsm["X_umap"][cells], QUALITY_K + 1)
        pca = _exact_knn(x, x[cells], QUALITY_K + 1)
        kept = [len(set(e[1:]) & set(p[1:])) for e, p in zip(emb, pca, strict=True)]
        out["umap_preservation"] = float(np.mean(kept) / QUALITY_K)
    return out


def main(embedding: str) -> None:
    """Run the job on the file named on the command line with ``--embedding embedding``."""
    path = path_arg()
    with stage("import"):
        import tempfile

        from anndataoom.cli import run as job
        from anndataoom.cli.__main__ import build_parser
        from anndataoom.io._any import open_any

    out = tempfile.mkdtemp()
    args = build_parser().parse_args(["run", path, "-o", f"{out}/job.h5ad", "--no-plots",
                                      "--progress", "never", "--embedding", embedding])

    class Stages(job.Timer):
        """``anndataoom run``'s timer whose steps are also benchmark stages."""

        def step(self, name: str):
            steps = ExitStack()
            steps.enter_context(stage(name))
            steps.enter_context(super().step(name))
            return steps

    t = Stages(progress=False)
    with t.step("read"):
        a = open_any(path)
    a, _ = job.pipeline(a, args, t)
    job.embed(a, args, t)
    with stage("quality"):
        q = quality(a, seed=args.seed)
    emit(result={"n_obs": a.n_obs, "n_hvg": a.n_vars,
                 "leiden_clusters": int(a.obs["leiden"].nunique()), **q})
