"""Out-of-memory AnnData with a Rust core and a scanpy-compatible API.

``read``/``read_h5ad``/``read_zarr`` open an ``.h5ad`` file or a ``.zarr``
store as an :class:`AnnDataOOM` (a real ``anndata.AnnData``) whose X and layers stay on disk as lazy
:class:`BackedArray` objects; :mod:`anndataoom.pp` runs scanpy's
preprocessing and :mod:`anndataoom.tl` its marker-gene ranking on it by
streaming the matrix through the Rust core.
"""

from importlib.metadata import version as _version

from anndataoom import _oom  # noqa: F401  (the compiled core; fails early if missing)
from anndataoom._concat import concat, install_anndata_hook
from anndataoom._core import (
    AnnDataOOM,
    BackedArray,
    BackedLayers,
    OOMMaterializeWarning,
    ScaledBackedArray,
    TransformedBackedArray,
    is_oom,
    oom_guard,
)
from anndataoom._distributed import distributed
from anndataoom.exceptions import AnnDataFormatError, AnnDataReadError, InMemoryRequiredError
from anndataoom.io import (
    concat_on_disk,
    read,
    read_10x_h5,
    read_10x_mtx,
    read_h5ad,
    read_loom,
    read_mtx,
    read_zarr,
    write_zarr,
)
from anndataoom.io._anndata_elems import install_writers

# One source of truth: the workspace Cargo.toml version, which maturin writes
# into the installed package's metadata (wheel, sdist and editable installs).
__version__ = _version("anndataoom")

install_anndata_hook()  # anndata.concat / AnnData.concatenate stay lazy on AnnDataOOM inputs
install_writers()  # anndata.io.write_h5ad/write_zarr/write_elem stream lazy matrices

__all__ = [
    "AnnDataFormatError",
    "AnnDataOOM",
    "AnnDataReadError",
    "BackedArray",
    "BackedLayers",
    "InMemoryRequiredError",
    "OOMMaterializeWarning",
    "ScaledBackedArray",
    "TransformedBackedArray",
    "__version__",
    "concat",
    "concat_on_disk",
    "distributed",
    "experimental",
    "get",
    "is_oom",
    "oom_guard",
    "pl",
    "pp",
    "read",
    "read_10x_h5",
    "read_10x_mtx",
    "read_loom",
    "read_mtx",
    "read_h5ad",
    "read_zarr",
    "tl",
    "write_zarr",
]

# --- analysis sub-packages (pp, tl) are imported here --------------------------
# (after the classes above, which they use)
from anndataoom import pp, tl  # noqa: E402

# --- get / pl / datasets sub-packages (oom.datasets.pbmc3k(), as sc.datasets) ---
# omicverse sees a sparse lazy X as sparse
# isort: split
from anndataoom import _omicverse, datasets, experimental, get, pl  # noqa: E402,F401

# --- anndataoom 0.1.8 / omicverse names (chunked_*, CenteredSparseArray) -------
from anndataoom._seed import *  # noqa: E402,F401,F403
from anndataoom._seed import __all__ as _seed_all  # noqa: E402

__all__ += _seed_all
