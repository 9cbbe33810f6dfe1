"""Contender: this project's anndataoom (scanpy-compatible names under ``oom.pp``)."""

from _stages import emit, path_arg, stage

path = path_arg()
with stage("import"):
    import anndataoom as oom
    from anndataoom.io._any import open_any
with stage("read"):
    a = open_any(path)  # .h5ad, .zarr, or a Cell Ranger .h5 (bench/cellranger.py)
with stage("qc"):
    a.var["mt"] = a.var_names.str.startswith("MT-")
    oom.pp.calculate_qc_metrics(a, qc_vars=["mt"], percent_top=None, log1p=False, inplace=True)
with stage("normalize"):
    oom.pp.normalize_total(a, target_sum=1e4)
with stage("log1p"):
    oom.pp.log1p(a)
with stage("hvg"):
    oom.pp.highly_variable_genes(a, n_top_genes=2000, flavor="seurat")
with stage("subset"):
    a = a[:, a.var["highly_variable"].to_numpy()]
with stage("scale"):
    oom.pp.scale(a, max_value=10)
with stage("pca"):
    oom.pp.pca(a, n_comps=50)
emit(result={"X_pca": list(a.obsm["X_pca"].shape), "n_hvg": int(a.n_vars),
             "variance_ratio_pc1": float(a.uns["pca"]["variance_ratio"][0])})
