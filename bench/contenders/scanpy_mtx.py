"""Contender: scanpy's in-memory reader of a Cell Ranger mtx folder."""

from _stages import emit, path_arg, stage

path = path_arg()
with stage("import"):
    import scanpy as sc
with stage("read"):
    a = sc.read_10x_mtx(path)
with stage("check"):
    total = float(a.X.sum(dtype="float64"))
emit(result={"shape": list(a.shape), "nnz": int(a.X.nnz), "sum": total})
