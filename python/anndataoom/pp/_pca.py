"""``pca``: exact principal components of a lazy matrix, out of core.

Up to 10,000 features (the usual HVG case) one streaming pass accumulates
the column means and the centred cross-product matrix in f64 (dense row
blocks, faer GEMM, all cores), faer eigendecomposes the covariance, and a
second pass projects.  With more features a block-Krylov (thick-restart
Lanczos) solver streams X once per iteration until every requested
component has converged.  Results are stored where scanpy stores them.
"""

from __future__ import annotations

import warnings

import numpy as np

from anndataoom import _distributed as passes
from anndataoom._progress import with_pass_bars
from anndataoom._random import seed_of
from anndataoom.pp._backed import get_array
from anndataoom.pp._docs import doc_copy, doc_layer, doc_params

__all__ = ["pca"]


class _Empty:
    """Marker for "argument not given", shown as scanpy's ``_empty``.

    Our own object rather than scanpy's, so that importing anndataoom does
    not import scanpy (about a second and 150 MB).
    """

    def __repr__(self) -> str:
        return "_empty"


_empty = _Empty()


def _given(value) -> bool:
    """Return False for our sentinel and for scanpy's own ``_empty`` passed through."""
    return value is not _empty and repr(value) != "_empty"

#: scanpy's solver names all map to our exact solvers; ``gram`` and
#: ``krylov`` force one of them.
_SOLVERS = {
    None: "auto",
    "auto": "auto",
    "arpack": "auto",
    "covariance_eigh": "auto",
    "full": "auto",
    "randomized": "auto",
    "lobpcg": "auto",
    "tsqr": "auto",
    "gram": "gram",
    "krylov": "krylov",
}


def _handle_mask_var(adata, mask_var, use_highly_variable):
    """Apply scanpy's rules for ``mask_var`` / ``use_highly_variable`` (→ param, mask)."""
    hint = (
        'Use_highly_variable=True can be called through mask_var="highly_variable". '
        "Use_highly_variable=False can be called through mask_var=None"
    )
    if use_highly_variable is not None:
        warnings.warn(
            "Argument `use_highly_variable` is deprecated, consider using the mask argument. "
            + hint,
            FutureWarning,
            stacklevel=3,
        )
        if _given(mask_var):
            raise ValueError(f"These arguments are incompatible. {hint}")
    if use_highly_variable or (
        use_highly_variable is None
        and not _given(mask_var)
        and "highly_variable" in adata.var.columns
    ):
        mask_var = "highly_variable"
    if not _given(mask_var) or mask_var is None:
        return None, None
    if isinstance(mask_var, str):
        if mask_var not in adata.var.columns:  # scanpy's error and words
            raise ValueError(
                f"Did not find `adata.var[{mask_var!r}]`. Either add the mask first to "
                "`adata.var` or consider using the mask argument with an array.")
        mask = np.asarray(adata.var[mask_var])
    else:
        mask = np.asarray(mask_var)
    if mask.dtype != bool:
        raise ValueError(f"mask_var must be boolean, got dtype {mask.dtype}")
    if mask.shape != (adata.n_vars,):
        raise ValueError(f"mask_var has shape {mask.shape}, expected ({adata.n_vars},)")
    return mask_var, mask


def _run(x, n_comps, zero_center, svd_solver, random_state, dtype):
    if svd_solver not in _SOLVERS:  # scanpy warns and uses its default, so do we
        warnings.warn(
            f"Ignoring svd_solver={svd_solver!r} and using the exact solver; known solvers: "
            f"{sorted(k for k in _SOLVERS if k is not None)}",
            UserWarning, stacklevel=3)
        svd_solver = None
    n_obs, n_vars = x.shape
    if n_comps is None:
        min_dim = min(n_obs, n_vars)
        n_comps = min_dim - 1 if min_dim <= 50 else 50
    n_comps = int(n_comps)
    if not 1 <= n_comps <= min(n_obs, n_vars):
        raise ValueError(
            f"n_comps={n_comps} must be between 1 and min(n_obs, n_vars)={min(n_obs, n_vars)}"
        )
    out_dtype = np.dtype(dtype)
    calc = "float32" if out_dtype == np.float32 else "float64"
    # Gram products in float32 for float32 data (f64 accumulation), else f64.
    precision = "float32" if x.dtype == np.float32 else "float64"
    r = passes.pca(
        x,
        n_comps,
        zero_center=bool(zero_center),
        solver=_SOLVERS[svd_solver],
        precision=precision,
        seed=seed_of(random_state),
        dtype=calc,
    )
    scores = r["scores"]
    if scores.dtype != out_dtype:
        scores = scores.astype(out_dtype)
    # sklearn keeps float32 input in float32 (components, variances).
    res_dtype = np.float32 if x.dtype == np.float32 else np.float64
    return scores, r, res_dtype, n_comps


@doc_params(layer=doc_layer, copy=doc_copy)
@with_pass_bars("pca")
def pca(  # noqa: PLR0913
    data,
    n_comps: int | None = None,
    *,
    layer: str | None = None,
    zero_center: bool = True,
    svd_solver: str | None = None,
    chunked: bool = False,
    chunk_size: int | None = None,
    random_state=0,
    return_info: bool = False,
    mask_var=_empty,
    use_highly_variable: bool | None = None,
    dtype="float32",
    key_added: str | None = None,
    copy: bool = False,
):
    """Principal component analysis (scanpy's ``pca``), exact and out of core.

    Parameters
    ----------
    data
        An :class:`~anndataoom.AnnDataOOM`, a lazy matrix (``BackedArray``),
        or in-memory data (handed over to scanpy).
    n_comps
        Number of components; 50 by default (or min(n_obs, n_vars) − 1).
    {layer}
    zero_center
        Centre the columns (PCA). ``False`` gives the truncated SVD of the
        uncentred data, with scikit-learn's ``TruncatedSVD`` variances.
    svd_solver
        Accepted for compatibility; every scanpy solver name selects the
        exact solver (covariance + eigendecomposition up to 10,000 features,
        block Krylov above). ``"gram"`` or ``"krylov"`` force one. Another
        name warns and uses the default, as scanpy does.
    chunked, chunk_size
        Accepted for compatibility: the data is always streamed in blocks
        and the result is the exact PCA (not an incremental approximation).
    random_state
        Seed of the Krylov solver's start block (the Gram solver is
        deterministic).
    return_info
        For a lazy matrix input: also return loadings, variance ratio and
        variance (as scanpy).
    mask_var
        Boolean mask or ``var`` column of the variables to use; by default
        ``var['highly_variable']`` when present (as scanpy).
    use_highly_variable
        Deprecated (as in scanpy); use ``mask_var``.
    dtype
        dtype of the scores.
    key_added
        Store under ``obsm[key_added]``, ``varm[key_added]``, ``uns[key_added]``
        instead of ``X_pca``, ``PCs``, ``pca``.
    {copy}

    Returns
    -------
    ``None`` or the copy; for a lazy matrix, the scores (or a tuple with
    ``return_info``). Sets ``obsm['X_pca']`` (n_obs × n_comps),
    ``varm['PCs']`` (n_vars × n_comps; zeros for masked-out variables),
    ``uns['pca']`` (``params``, ``variance`` — eigenvalues of the
    covariance, ddof 1 — and ``variance_ratio`` — over the total variance
    of the used variables).

    Notes
    -----
    Each loading is signed so that its largest-magnitude entry is positive
    (the same convention as scikit-learn's ``svd_flip``), so results are
    deterministic. Memory is bounded by the block size and n_vars², never
    by n_obs × n_vars.
    """
    if hasattr(data, "matrix") and not hasattr(data, "obs"):  # a lazy matrix
        scores, r, res_dtype, _ = _run(
            data, n_comps, zero_center, svd_solver, random_state, dtype
        )
        if return_info:
            return (
                scores,
                r["components"].T.astype(res_dtype),
                r["variance_ratio"].astype(res_dtype),
                r["variance"].astype(res_dtype),
            )
        return scores
    if not hasattr(data, "obs") or get_array(data, layer) is None:
        import scanpy as sc
        from scanpy._utils import _empty as scanpy_empty

        if not _given(mask_var):
            mask_var = scanpy_empty
        return sc.pp.pca(
            data,
            n_comps,
            layer=layer,
            zero_center=zero_center,
            svd_solver=svd_solver,
            chunked=chunked,
            chunk_size=chunk_size,
            random_state=random_state,
            return_info=return_info,
            mask_var=mask_var,
            use_highly_variable=use_highly_variable,
            dtype=dtype,
            key_added=key_added,
            copy=copy,
        )
    if layer is not None and chunked:
        raise NotImplementedError("Cannot use `layer` and `chunked` at the same time.")
    adata = data.copy() if copy else data
    mask_param, mask = _handle_mask_var(adata, mask_var, use_highly_variable)
    x = get_array(adata, layer)
    if mask is not None:
        if not mask.any():
            raise ValueError("mask_var selects no variables")
        x = x._subset(None, np.flatnonzero(mask).astype(np.int64))
    scores, r, res_dtype, n_comps = _run(
        x, n_comps, zero_center, svd_solver, random_state, dtype
    )
    key_obsm, key_varm, key_uns = (
        ("X_pca", "PCs", "pca") if key_added is None else [key_added] * 3
    )
    adata.obsm[key_obsm] = scores
    comps = r["components"].astype(res_dtype)
    if mask is not None:
        pcs = np.zeros((adata.n_vars, n_comps))
        pcs[mask] = comps
        adata.varm[key_varm] = pcs
    else:
        adata.varm[key_varm] = comps
    params = dict(
        zero_center=zero_center,
        use_highly_variable=isinstance(mask_param, str) and mask_param == "highly_variable",
        mask_var=mask_param,
    )
    if layer is not None:
        params["layer"] = layer
    adata.uns[key_uns] = dict(
        params=params,
        variance=r["variance"].astype(res_dtype),
        variance_ratio=r["variance_ratio"].astype(res_dtype),
    )
    return adata if copy else None
