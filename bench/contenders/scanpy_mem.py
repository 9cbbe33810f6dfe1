"""Contender: scanpy 1.11 with the whole matrix in memory."""

from _stages import emit, path_arg, read_scanpy, stage

path = path_arg()
with stage("import"):
    import scanpy as sc
with stage("read"):
    a = read_scanpy(path)
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
    a = a[:, a.var["highly_variable"]].copy()
with stage("scale"):
    sc.pp.scale(a, max_value=10)
with stage("pca"):
    sc.pp.pca(a, n_comps=50, svd_solver="arpack")
emit(result={"X_pca": list(a.obsm["X_pca"].shape), "n_hvg": int(a.n_vars),
             "variance_ratio_pc1": float(a.uns["pca"]["variance_ratio"][0])})
