"""Contender (markers workload): oom.tl.rank_genes_groups, streamed from the file."""

from _stages import emit, groups_of, path_arg, stage

path = path_arg()
with stage("import"):
    import anndataoom as oom
with stage("read"):
    a = oom.read(path)
with stage("normalize"):
    oom.pp.normalize_total(a, target_sum=1e4)
with stage("log1p"):
    oom.pp.log1p(a)
with stage("groups"):
    a.obs["group"] = groups_of(a.n_obs)
with stage("t-test"):
    oom.tl.rank_genes_groups(a, "group", method="t-test", key_added="tt")
with stage("wilcoxon"):
    oom.tl.rank_genes_groups(a, "group", method="wilcoxon", key_added="wx")
emit(result={"top_wilcoxon_g0": [str(g) for g in a.uns["wx"]["names"]["g0"][:5]],
             "top_ttest_g0": [str(g) for g in a.uns["tt"]["names"]["g0"][:5]]})
