"""Type stub of the compiled core ``anndataoom._oom`` (checked with ``mypy.stubtest``)."""

from __future__ import annotations

import os
from typing import Any, Literal, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "AnnDataFormatError",
    "AnnDataReadError",
    "CallContext",
    "Matrix",
    "PassState",
    "add_filter_plugin_dir",
    "check_file",
    "is_zarr_node",
    "missing_filter_message",
    "string_bytes",
    "col_group_sums",
    "concat_matrices",
    "count_above",
    "knn_graph",
    "leiden",
    "moments",
    "open",
    "pass_state_from_bytes",
    "matrix_from_plan",
    "pca",
    "pca_from_gram",
    "pca_project",
    "gram_state",
    "positive_counts",
    "lazy_cast",
    "lazy_combat",
    "lazy_downsample",
    "is_untransformed",
    "lazy_log1p",
    "lazy_multiply",
    "lazy_normalize",
    "op_names",
    "lazy_pearson_residuals",
    "lazy_power",
    "lazy_scale",
    "lazy_sqrt",
    "without_ops",
    "read_mtx",
    "qc_metrics",
    "rank_sums",
    "lazy_regress",
    "regress_stats",
    "residual_variances",
    "umap_connectivities",
    "umap_layout",
    "umap_spectral",
    "write_h5ad_matrix",
    "write_zarr_matrix",
]

_F64 = npt.NDArray[np.float64]
_U64 = npt.NDArray[np.uint64]
_I64 = npt.NDArray[np.int64]
_U32 = npt.NDArray[np.uint32]
_I32 = npt.NDArray[np.int32]
_F32 = npt.NDArray[np.float32]
_Bool = npt.NDArray[np.bool_]
_Block = (
    tuple[Literal["csr"], np.ndarray, npt.NDArray[np.int32], _I64, tuple[int, int]]
    | tuple[Literal["dense"], np.ndarray]
)

class AnnDataReadError(OSError):
    """A file that cannot be read as AnnData (not HDF5, truncated, corrupt)."""

class AnnDataFormatError(ValueError):
    """A readable file whose content is not valid AnnData."""

@final
class CallContext:
    def __new__(cls, runs: int | None = None) -> CallContext: ...
    @property
    def runs(self) -> int: ...
    def cancel(self) -> None: ...
    def progress(self) -> tuple[int, int]: ...
    def __enter__(self) -> CallContext: ...
    def __exit__(self, _ty: object, _value: object, _tb: object) -> None: ...

@final
class Matrix:
    """A lazy view of a stored matrix: row/column selection plus pending transforms."""

    @property
    def path(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def source_paths(self) -> list[str]: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    @property
    def dtype(self) -> str: ...
    @property
    def format(self) -> Literal["csr_matrix", "csc_matrix", "array"]: ...
    @property
    def is_sparse(self) -> bool: ...
    @property
    def stored_nnz(self) -> int | None: ...
    @property
    def is_identity(self) -> bool: ...
    def subset(self, rows: _I64 | None = None, cols: _I64 | None = None) -> Matrix: ...
    def read(self, start: int, end: int) -> _Block: ...
    def runs(self, groups: int) -> list[tuple[int, int]]: ...
    def blocks(self, target: int) -> list[tuple[int, int]]: ...
    def axis_sums(self) -> tuple[_F64, _U64, _F64, _U64]: ...
    def to_plan(self) -> bytes: ...
    def __reduce__(self) -> tuple[Any, tuple[bytes, str, str]]: ...

def matrix_from_plan(plan: bytes, path: str, key: str) -> Matrix: ...
def add_filter_plugin_dir(dir: str | os.PathLike[str]) -> None: ...
def check_file(path: str | os.PathLike[str]) -> None: ...
def is_zarr_node(path: str | os.PathLike[str]) -> bool: ...
def missing_filter_message() -> str: ...
def string_bytes(path: str | os.PathLike[str], key: str) -> bytes | None: ...
def open(path: str | os.PathLike[str], key: str, layout: str = "anndata") -> Matrix: ...
def write_h5ad_matrix(
    matrix: Matrix,
    path: str | os.PathLike[str],
    key: str,
    compression: str | None = None,
    compression_opts: int | None = None,
    chunk: int = 65536,
    index32_limit: int = 2147483648,
) -> None: ...
def write_zarr_matrix(
    matrix: Matrix,
    root: str | os.PathLike[str],
    key: str,
    zarr_format: int,
    chunk: int,
    shard: int | None = None,
) -> None: ...
def concat_matrices(
    parts: list[Matrix],
    colmaps: list[_I64],
    ncols: int,
    dtype: str,
    sparse: bool,
    fill: float = 0.0,
    key: str | None = None,
) -> Matrix: ...

# -- lazy transforms (return new views) ---------------------------------------
def lazy_normalize(m: Matrix, divisor: _F64) -> Matrix: ...
def lazy_log1p(m: Matrix, base: float | None = None) -> Matrix: ...
def lazy_scale(
    m: Matrix,
    mean: _F64,
    std: _F64,
    zero_center: bool = True,
    max_value: float | None = None,
    mask: _Bool | None = None,
) -> Matrix: ...
def lazy_cast(m: Matrix, dtype: str | None = None) -> Matrix: ...
def lazy_multiply(
    m: Matrix,
    scalar: float,
    row: _F64 | None = None,
    col: _F64 | None = None,
    dtype: str = "float64",
) -> Matrix: ...
def lazy_power(m: Matrix, p: float, dtype: str = "float64") -> Matrix: ...
def op_names(m: Matrix) -> list[str]: ...
def without_ops(m: Matrix) -> Matrix: ...
def is_untransformed(m: Matrix) -> bool: ...
def lazy_pearson_residuals(
    m: Matrix,
    row_sum: _F64,
    col_sum: _F64,
    total: float,
    theta: float,
    clip: float,
    dtype: str = "float64",
) -> Matrix: ...
def lazy_regress(
    m: Matrix,
    coef: _F64,
    dtype: str,
    design: _F64 | None = None,
    codes: _U32 | None = None,
    ngroups: int = 0,
) -> Matrix: ...

# -- streaming kernels (one pass each) ----------------------------------------
@final
class PassState:
    """A pass kernel's state of the rows it read: combine in row order, then finalize."""

    @staticmethod
    def combine(states: list[PassState]) -> PassState: ...
    @property
    def kind(self) -> str: ...
    @property
    def nrows(self) -> int: ...
    def finalize(self) -> Any: ...
    def to_bytes(self) -> bytes: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

def pass_state_from_bytes(bytes: bytes) -> PassState: ...
def qc_metrics(m: Matrix, top: list[int], masks: _Bool) -> PassState: ...
def positive_counts(m: Matrix) -> PassState: ...
def count_above(m: Matrix, threshold: _F64) -> PassState: ...
def moments(
    m: Matrix,
    groups: _U32 | None = None,
    n_groups: int = 1,
    expm1: bool = False,
    factor: float | None = None,
    clip: _F64 | None = None,
    unmapped: bool = False,
) -> PassState: ...
def residual_variances(
    m: Matrix,
    row_sum: _F64,
    col_sum: _F64,
    total: _F64,
    theta: float,
    clip: float,
    groups: _U32 | None = None,
    f32_product: bool = False,
) -> np.ndarray: ...
def leiden(
    n: int,
    indptr: _I64,
    indices: npt.NDArray[np.int32],
    data: npt.NDArray[np.float32] | _F64,
    resolution: float,
    objective: str,
    n_iterations: int,
    seed: int,
    beta: float = 0.01,
) -> tuple[_U32, int, float]: ...
def rank_sums(
    m: Matrix,
    groups: _U32,
    n_groups: int,
    col_nnz: _U64,
    budget: int,
    reference: int | None = None,
) -> tuple[_F64, _F64]: ...
def regress_stats(
    m: Matrix,
    design: _F64 | None = None,
    codes: _U32 | None = None,
    ngroups: int = 0,
) -> PassState: ...
def pca(
    m: Matrix,
    n_comps: int,
    zero_center: bool = True,
    solver: str = "auto",
    precision: str = "float32",
    seed: int = 0,
    tol: float = 1e-7,
    max_passes: int = 200,
    dtype: str = "float32",
    full_eigh_max: int = 4000,
    block: int = 0,
) -> dict[str, Any]: ...
def gram_state(m: Matrix, precision: str = "float32") -> PassState: ...
def pca_from_gram(
    state: PassState,
    n_comps: int,
    zero_center: bool = True,
    seed: int = 0,
    full_eigh_max: int = 4000,
) -> dict[str, Any]: ...
def pca_project(
    m: Matrix, components: _F64, mean: _F64 | None = None, dtype: str = "float32"
) -> PassState: ...

# -- sqrt, downsample_counts, combat, aggregate(axis="var") -------------------
def lazy_sqrt(m: Matrix) -> Matrix: ...
def lazy_downsample(
    m: Matrix, target: _U64, seed: int, replace: bool = False, always: bool = False
) -> Matrix: ...
def lazy_combat(
    m: Matrix,
    design: _F64,
    coef: _F64,
    batch: _U32,
    sd: _F64,
    gamma: _F64,
    delta_sqrt: _F64,
) -> Matrix: ...
def col_group_sums(m: Matrix, groups: _U32, n_groups: int) -> tuple[_F64, _F64, _U64]: ...
def read_mtx(path: str | os.PathLike[str], transpose: bool = False) -> Matrix: ...

# -- neighbors ----------------------------------------------------------------
def knn_graph(
    x: _F32,
    k: int,
    exact_max: int = 20000,
    nlist: int = 0,
    coarse_dims: int = 0,
    nprobe: int = 8,
    qprobe: int = 8,
    refine: int = 0,
    kmeans_iters: int = 6,
    seed: int = 0,
) -> tuple[_I32, _F64]: ...
def umap_connectivities(indices: _I32, distances: _F32) -> tuple[_I64, _I32, _F32]: ...
def umap_spectral(
    indptr: _I64,
    indices: _I32,
    data: npt.NDArray[np.float32],
    dim: int,
    seed: int,
    tol: float = 1e-4,
    max_products: int = 100,
) -> tuple[_F64, float, bool]: ...
def umap_layout(
    indptr: _I64,
    indices: _I32,
    data: npt.NDArray[np.float32],
    init: npt.NDArray[np.float32],
    n_epochs: int,
    prune_epochs: int,
    a: float,
    b: float,
    gamma: float,
    alpha: float,
    negative_sample_rate: float,
    seed: int,
) -> npt.NDArray[np.float32]: ...
