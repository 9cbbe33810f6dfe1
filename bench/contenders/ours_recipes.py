"""Contender (recipes workload): scanpy's recipes out of core, each on the file's counts."""

import warnings

from _stages import emit, path_arg, stage

warnings.simplefilter("ignore")
path = path_arg()
with stage("import"):
    import anndataoom as oom
with stage("read"):
    a = oom.read(path)
with stage("zheng17"):
    oom.pp.recipe_zheng17(a, n_top_genes=1000)
with stage("read2"):
    b = oom.read(path)
with stage("pearson"):
    oom.experimental.pp.recipe_pearson_residuals(b, n_top_genes=1000)
emit(result={"zheng17_genes": int(a.n_vars),
             "pearson_pc1_first": [round(float(v), 4) for v in b.obsm["X_pca"][:3, 0]]})
