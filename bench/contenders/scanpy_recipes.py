"""Contender (recipes workload): scanpy's recipes with X in memory, each on the file's counts."""

import warnings

from _stages import emit, path_arg, read_scanpy, stage

warnings.simplefilter("ignore")
path = path_arg()
with stage("import"):
    import scanpy as sc
with stage("read"):
    a = read_scanpy(path)
with stage("zheng17"):
    sc.pp.recipe_zheng17(a, n_top_genes=1000)
    n_genes = a.n_vars
with stage("read2"):
    del a
    b = read_scanpy(path)
with stage("pearson"):
    sc.experimental.pp.recipe_pearson_residuals(b, n_top_genes=1000)
emit(result={"zheng17_genes": int(n_genes),
             "pearson_pc1_first": [round(float(v), 4) for v in b.obsm["X_pca"][:3, 0]]})
