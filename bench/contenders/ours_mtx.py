"""Contender: parse a Cell Ranger mtx folder with anndataoom (into a temp store on disk)."""

from _stages import emit, path_arg, stage

path = path_arg()
with stage("import"):
    import anndataoom as oom
with stage("read"):
    a = oom.read_10x_mtx(path)
with stage("check"):
    total = float(a.X.sum())
emit(result={"shape": list(a.shape), "nnz": int(a.X.nnz), "sum": total})
