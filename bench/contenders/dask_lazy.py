"""Contender: scanpy 1.11 on a lazy dask X (anndata's ``read_elem_lazy``).

``X`` is a dask array of CSR blocks of :data:`CHUNK_ROWS` cells read from
the open file; obs/var are read into memory.  scanpy keeps normalize_total,
log1p, the subset and scale lazy, so their stage times are near zero and the
deferred work is paid by the stages that compute (QC, HVG, PCA): every
computing stage re-reads and re-transforms X from the file.  The PCA uses
``svd_solver='covariance_eigh'`` (scanpy's dask-capable exact solver) and
``X_pca`` is computed inside the PCA stage.

scanpy 1.11.5's ``calculate_qc_metrics`` computes each metric separately (one
pass over X each), and its per-gene ``axis_nnz`` on a dask array is
``map_blocks(..., drop_axis=0)``, which makes dask concatenate every row
block into one matrix: the QC stage holds all of X (1.8 GiB peak at 100k
cells; killed at the RSS limit at 1M).
"""

from _stages import emit, path_arg, stage

#: Cells per dask block (about 70 MB of CSR at PBMC density).
CHUNK_ROWS = 10_000

path = path_arg()
with stage("import"):
    import anndata as ad
    import h5py
    import numpy as np
    import scanpy as sc
    from anndata.experimental import read_elem_lazy
    from anndata.io import read_elem
with stage("read"):
    f = h5py.File(path, "r")
    a = ad.AnnData(
        X=read_elem_lazy(f["X"], chunks=(CHUNK_ROWS, -1)),
        obs=read_elem(f["obs"]),
        var=read_elem(f["var"]),
    )
with stage("qc"):
    a.var["mt"] = a.var_names.str.startswith("MT-")
    sc.pp.calculate_qc_metrics(a, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
with stage("normalize"):
    sc.pp.normalize_total(a, target_sum=1e4)
with stage("log1p"):
    sc.pp.log1p(a)
with stage("hvg"):
    sc.pp.highly_variable_genes(a, n_top_genes=2000, flavor="seurat")
with stage("subset"):
    a = a[:, a.var["highly_variable"].to_numpy()].copy()
with stage("scale"):
    sc.pp.scale(a, max_value=10)
with stage("pca"):
    sc.pp.pca(a, n_comps=50, svd_solver="covariance_eigh")
    a.obsm["X_pca"] = np.asarray(a.obsm["X_pca"].compute())
emit(result={"X_pca": list(a.obsm["X_pca"].shape), "n_hvg": int(a.n_vars),
             "variance_ratio_pc1": float(np.asarray(a.uns["pca"]["variance_ratio"])[0])})
