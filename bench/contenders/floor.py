"""Floor: one full read + decode of X, with this project's reader and with h5py.

``ours_read`` is ``anndataoom._oom.open(p, 'X').axis_sums()`` (a parallel
pass over every stored value); ``h5py_read`` reads ``X/data`` and
``X/indices`` whole into memory (single-threaded, as anndata does).
"""

from _stages import path_arg, stage

path = path_arg()
with stage("import"):
    import h5py

    from anndataoom import _oom
with stage("ours_read"):
    _oom.open(path, "X").axis_sums()
with stage("h5py_read"):
    with h5py.File(path, "r") as f:
        data = f["X/data"][:]
        indices = f["X/indices"][:]
    del data, indices
