"""Generate a large ``.h5ad`` by tiling real PBMC 3k cells with binomial thinning.

Each output cell is a uniformly drawn PBMC 3k source cell whose counts are
thinned by ``Binomial(count, p)`` with ``p ~ U(0.5, 1.0)`` drawn per output
cell, so cells differ while the gene-gene structure, the
sparsity pattern and the MT- genes stay those of real data.

``--mode tile`` (the default, kept for comparisons with earlier QC→PCA
numbers) makes ~N/2,700 near-copies of each source cell, so a kNN graph of the
result falls apart into thousands of components and Leiden finds thousands of
clusters. ``--mode mixed`` makes data that behaves like an atlas for the graph
steps too: each output cell is the sum of ``MIX_PARENTS`` thinned parts,
``Binomial(count, p·w_j)`` of a source cell and of ``MIX_PARENTS − 1`` cells
drawn from its ``MIX_NEIGHBORS`` nearest source cells (in the source's own PCA
space), with weights ``w ~ Dirichlet(1, …, 1)``, so cells fill the neighbourhoods
between source cells while keeping a real cell's depth and sparsity (~700
stored values per cell, as tiling). Measured at 100k cells (kNN graph and
Leiden at resolution 1, as ``anndataoom run``): one connected component; 172
Leiden clusters with two parents, 61 with five, 36 with ten — hence ten.

The matrix is written block by block into resizable, chunked HDF5 datasets
(CSR float32 ``data`` and int32 ``indices``) with the anndata encoding
attributes, so memory stays at one block whatever ``--n-cells`` is; only the
row lengths are kept, and ``indptr`` is written at the end as int32 when the
total fits (as scipy/anndata write it: scipy refuses some operations on a
CSR with int32 ``indices`` and int64 ``indptr``), else int64.
``obs`` (``batch``: 4 categories) and ``var`` (the PBMC gene symbols and
Ensembl ids) are written with :func:`anndata.io.write_elem`.

Usage::

    python bench/gen.py --n-cells 100000 -o bench/data/pbmc_100k.h5ad
    python bench/gen.py --n-cells 1000000 --compression gzip -o bench/data/pbmc_1m_gzip.h5ad
    python bench/gen.py --n-cells 1000000 --mode mixed   # bench/data/mixed_1m.h5ad
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
#: HDF5 chunk of ``data``/``indices``/``indptr`` in elements (512 KiB of float32):
#: many independent chunks, so a reader can decode them in parallel.
CHUNK_ELEMS = 1 << 17
#: Output cells generated and written per block.
BLOCK_CELLS = 20_000
#: Blocks between progress lines.
PROGRESS_EVERY = 10
#: gzip level (h5py's default, also what ``anndata.write_h5ad(compression='gzip')`` uses).
GZIP_LEVEL = 4
N_BATCHES = 4
P_RANGE = (0.5, 1.0)
#: ``--mode mixed``: each cell mixes a source cell with cells drawn from this many
#: of its nearest source cells ...
MIX_NEIGHBORS = 10
#: ... into this many parts in all (module docstring: why ten).
MIX_PARENTS = 10


def pbmc3k_path() -> Path:
    """Path of the cached PBMC 3k raw counts, fetched by ``anndataoom.datasets``.

    ``datasets.py`` is loaded by file path: it does not need the compiled
    extension, so this works before (or while) the package is built.
    """
    src = REPO / "python" / "anndataoom" / "datasets.py"
    spec = importlib.util.spec_from_file_location("_oom_datasets", src)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return Path(mod.pbmc3k())


def load_source(path: Path):
    """Return ``(X, var)`` of the source file: CSR float32 counts and the var frame."""
    import anndata as ad

    src = ad.read_h5ad(path)
    X = src.X.tocsr()
    X.sum_duplicates()
    X.eliminate_zeros()
    return X, src.var


def thinned_block(X, rng: np.random.Generator, n: int):
    """``n`` new cells: random rows of ``X`` thinned by per-cell Binomial(count, p).

    Returns CSR parts ``(data float32, indices int32, row_nnz int64)``.
    """
    rows = rng.integers(0, X.shape[0], size=n)
    p = rng.uniform(*P_RANGE, size=n)
    return _csr_parts(_thin(X, rows, p, rng))


def source_neighbors(X, var: pd.DataFrame, k: int = MIX_NEIGHBORS) -> np.ndarray:
    """``k`` nearest other source cells of each source cell (``n × k`` int64).

    Measured in the source's own scanpy PCA (normalize, log1p, 2,000 seurat
    HVGs, scale, 50 PCs), where scanpy's graph steps would see them.
    """
    import anndata as ad
    import scanpy as sc
    from sklearn.neighbors import NearestNeighbors

    a = ad.AnnData(X.copy(), var=var.copy())
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    sc.pp.highly_variable_genes(a, n_top_genes=2000, subset=True)
    sc.pp.scale(a, max_value=10)
    sc.pp.pca(a, n_comps=50, random_state=0)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(a.obsm["X_pca"])
    return nn.kneighbors(return_distance=False)[:, :k]


def _thin(X, rows: np.ndarray, p: np.ndarray, rng: np.random.Generator):
    """Rows ``rows`` of ``X`` with each count thinned by Binomial(count, p[row])."""
    sub = X[rows]  # CSR row gather, sorted indices preserved
    sub.data = rng.binomial(sub.data.astype(np.int64), np.repeat(p, np.diff(sub.indptr)))
    return sub


def mixed_block(X, nbrs: np.ndarray, rng: np.random.Generator, n: int):
    """``n`` new cells, each a thinned mix of a source cell and its neighbours.

    Returns CSR parts ``(data float32, indices int32, row_nnz int64)``.
    """
    rows = rng.integers(0, X.shape[0], size=n)
    p = rng.uniform(*P_RANGE, size=n)
    w = rng.dirichlet(np.ones(MIX_PARENTS), size=n)
    cells = _thin(X, rows, p * w[:, 0], rng)
    for j in range(1, MIX_PARENTS):
        mates = nbrs[rows, rng.integers(0, nbrs.shape[1], size=n)]
        cells = cells + _thin(X, mates, p * w[:, j], rng)
    cells.sort_indices()
    return _csr_parts(cells)


def _csr_parts(cells):
    """Return ``(data float32, indices int32, row_nnz int64)`` of ``cells`` without zeros."""
    cells.eliminate_zeros()
    return (cells.data.astype(np.float32), cells.indices.astype(np.int32),
            np.diff(cells.indptr).astype(np.int64))


def _create_1d(group: h5py.Group, name: str, dtype, compression: str | None, init=()):
    """Resizable 1-D chunked dataset (gzip or uncompressed) holding ``init``."""
    init = np.asarray(init, dtype=dtype)
    kw = {"compression": "gzip", "compression_opts": GZIP_LEVEL} if compression else {}
    return group.create_dataset(
        name, data=init, maxshape=(None,), chunks=(CHUNK_ELEMS,), dtype=dtype, **kw
    )


def _append(ds: h5py.Dataset, values: np.ndarray) -> None:
    start = ds.shape[0]
    ds.resize((start + len(values),))
    ds[start:] = values


def write_obs_var(f: h5py.File, n_cells: int, var: pd.DataFrame, rng: np.random.Generator):
    """Write ``obs`` (cell names, ``batch``), ``var`` and the empty anndata groups."""
    from anndata.io import write_elem

    width = len(str(n_cells - 1))
    names = pd.Index([f"cell{i:0{width}d}" for i in range(n_cells)], name=None)
    labels = [f"batch{k + 1}" for k in range(N_BATCHES)]
    codes = rng.integers(0, N_BATCHES, size=n_cells).astype(np.int8)
    batch = pd.Categorical.from_codes(codes, categories=labels)
    write_elem(f, "obs", pd.DataFrame({"batch": batch}, index=names))
    write_elem(f, "var", var)
    for key in ("layers", "obsm", "obsp", "varm", "varp", "uns"):
        write_elem(f, key, {})


def generate(
    out: Path,
    n_cells: int,
    *,
    seed: int = 0,
    compression: str | None = None,
    source: Path | None = None,
    mode: str = "tile",
    log=None,
) -> Path:
    """Write the generated data set to ``out`` (atomically: ``out.tmp`` then rename).

    ``mode``: ``"tile"`` or ``"mixed"`` (module docstring). ``log`` receives
    progress lines (default: printed and flushed).
    """
    log = log or functools.partial(print, flush=True)
    if n_cells <= 0:
        raise ValueError("n_cells must be positive")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    X, var = load_source(source or pbmc3k_path())
    if mode == "mixed":
        nbrs = source_neighbors(X, var)
        make_block = functools.partial(mixed_block, X, nbrs)
    else:
        make_block = functools.partial(thinned_block, X)
    rng = np.random.default_rng(seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    t0 = time.perf_counter()
    with h5py.File(tmp, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        g = f.create_group("X")
        g.attrs["encoding-type"] = "csr_matrix"
        g.attrs["encoding-version"] = "0.1.0"
        g.attrs["shape"] = np.array([n_cells, X.shape[1]], dtype=np.int64)
        data = _create_1d(g, "data", np.float32, compression)
        indices = _create_1d(g, "indices", np.int32, compression)
        row_nnz, nnz = [np.zeros(1, dtype=np.int64)], 0
        for start in range(0, n_cells, BLOCK_CELLS):
            n = min(BLOCK_CELLS, n_cells - start)
            d, i, lengths = make_block(rng, n)
            _append(data, d)
            _append(indices, i)
            row_nnz.append(lengths)
            nnz += len(d)
            if (start // BLOCK_CELLS) % PROGRESS_EVERY == 0 or start + n == n_cells:
                log(f"  {start + n:>10,} / {n_cells:,} cells, nnz {nnz:,} "
                    f"({time.perf_counter() - t0:.0f} s)")
        indptr_dtype = np.int32 if nnz < 2**31 else np.int64
        _create_1d(g, "indptr", indptr_dtype, compression,
                   init=np.cumsum(np.concatenate(row_nnz)))
        write_obs_var(f, n_cells, var, rng)
    os.replace(tmp, out)
    size = out.stat().st_size
    log(f"wrote {out} ({size / 2**30:.2f} GiB, {nnz:,} stored values, "
        f"{time.perf_counter() - t0:.0f} s)")
    return out


MODES = ("tile", "mixed")


def default_name(n_cells: int, compression: str | None, mode: str = "tile") -> str:
    """Name ``pbmc_100k.h5ad``, ``pbmc_1m_gzip.h5ad``, ``mixed_1m.h5ad`` ... (``bench/run.py``)."""
    if n_cells % 1_000_000 == 0:
        label = f"{n_cells // 1_000_000}m"
    elif n_cells % 1000 == 0:
        label = f"{n_cells // 1000}k"
    else:
        label = str(n_cells)
    prefix = "pbmc" if mode == "tile" else mode
    return f"{prefix}_{label}{'_gzip' if compression else ''}.h5ad"


def main(argv=None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-cells", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compression", choices=("gzip", "none"), default="none")
    ap.add_argument("--source", type=Path, help="source .h5ad (default: PBMC 3k)")
    ap.add_argument("--mode", choices=MODES, default="tile",
                    help="tile: thinned copies; mixed: thinned mixes of neighbouring cells")
    ap.add_argument("-o", "--output", type=Path,
                    help="output .h5ad (default: bench/data/pbmc_<N>[_gzip].h5ad)")
    args = ap.parse_args(argv)
    compression = None if args.compression == "none" else args.compression
    out = args.output or REPO / "bench" / "data" / default_name(args.n_cells, compression,
                                                                 args.mode)
    generate(out, args.n_cells, seed=args.seed, compression=compression, source=args.source,
             mode=args.mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
