"""Contender (markers workload): scanpy's rank_genes_groups with X in memory."""

from _stages import emit, groups_of, path_arg, read_scanpy, stage

path = path_arg()
with stage("import"):
    import scanpy as sc
with stage("read"):
    a = read_scanpy(path)
with stage("normalize"):
    sc.pp.normalize_total(a, target_sum=1e4)
with stage("log1p"):
    sc.pp.log1p(a)
with stage("groups"):
    a.obs["group"] = groups_of(a.n_obs)
with stage("t-test"):
    sc.tl.rank_genes_groups(a, "group", method="t-test", key_added="tt")
with stage("wilcoxon"):
    sc.tl.rank_genes_groups(a, "group", method="wilcoxon", key_added="wx")
emit(result={"top_wilcoxon_g0": [str(g) for g in a.uns["wx"]["names"]["g0"][:5]],
             "top_ttest_g0": [str(g) for g in a.uns["tt"]["names"]["g0"][:5]]})
