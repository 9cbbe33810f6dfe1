"""Contender: anndataoom 0.1.8 from PyPI (runs in ``bench/.venv-seed``).

Its API differs from scanpy's: chunked_* functions, QC without a ``qc_vars``
argument (the MT share comes from ``chunked_gene_group_pct``), and only a
Pearson-residual HVG (it reads raw counts from ``layers['counts']``, which
``chunked_normalize_total`` sets).  ``chunked_scale`` puts the lazy scaled
matrix in ``layers['scaled']`` and ``chunked_pca`` returns ``X_pca`` instead
of storing it.
"""

import numpy as np
from _stages import emit, path_arg, stage

path = path_arg()
with stage("import"):
    import anndataoom as oom
with stage("read"):
    a = oom.read(path)
with stage("qc"):
    mt = np.asarray(a.var_names.str.startswith("MT-"))
    oom.chunked_qc_metrics(a)
    a.obs["pct_counts_mt"] = 100 * oom.chunked_gene_group_pct(a, mt)
with stage("normalize"):
    oom.chunked_normalize_total(a, target_sum=1e4)
with stage("log1p"):
    oom.chunked_log1p(a)
with stage("hvg"):
    oom.chunked_highly_variable_genes_pearson(a, n_top_genes=2000, layer="counts")
with stage("subset"):
    # keep the parent alive: when it is garbage-collected, the subset's reads
    # panic ("accessing an empty slot")
    parent = a
    a = parent[:, parent.var["highly_variable"].to_numpy()]
with stage("scale"):
    oom.chunked_scale(a, max_value=10)
with stage("pca"):
    X_pca, _, variance_ratio = oom.chunked_pca(a, layer="scaled", n_comps=50)
emit(result={"X_pca": list(X_pca.shape), "n_hvg": int(a.n_vars),
             "variance_ratio_pc1": float(variance_ratio[0])})
