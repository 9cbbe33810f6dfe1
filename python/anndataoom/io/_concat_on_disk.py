"""``concat_on_disk``: many AnnData files written as one, in one streamed pass.

The merge itself is :func:`anndataoom.concat` (metadata by
:func:`anndata.concat` on copies without X, so every ``join``/``merge``/
``uns_merge``/``label``/``keys``/``index_unique`` behaves exactly as
anndata's; X and layers as a lazy row concatenation); the result is then
streamed block by block into the output by the atomic writers, so memory
stays bounded by one block whatever the total size.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Literal

import anndata
import pandas as pd

from anndataoom._concat import concat
from anndataoom._core._anndataoom import AnnDataOOM
from anndataoom.io._any import open_any
from anndataoom.io._read import _fspath
from anndataoom.io._write import write_h5ad, write_zarr

__all__ = ["concat_on_disk"]

_H5AD = (".h5ad", ".h5")


def _out_kind(out: str) -> str:
    suffix = Path(out).suffix.lower()
    if suffix in _H5AD:
        return "h5ad"
    if suffix == ".zarr" or os.path.isdir(out):
        return "zarr"
    raise ValueError(f"output '{out}': expected an .h5ad file or a .zarr store")


def _check_layers(objs: list, join: str) -> None:
    """Refuse an outer join of layers some inputs lack (anndata would fill them)."""
    if join != "outer":
        return
    sets = [set(o.layers) for o in objs]
    partial = set().union(*sets) - set.intersection(*sets)
    if partial:
        raise NotImplementedError(
            f"layers {sorted(partial)} are missing from some inputs; an outer join would "
            "have to fill them for those cells, which concat_on_disk does not do. Drop these "
            "layers or use join='inner' (which drops them)"
        )


def _unused(merge, uns_merge, pairwise: bool) -> frozenset:
    """Elements of the inputs :func:`anndata.concat` drops with these options.

    ``merge=None`` keeps no var column, varm or varp; ``uns_merge=None`` no
    uns; obsp only with ``pairwise``; raw is concatenated without a merge
    (raw var columns and raw varm dropped).  The inputs' files are opened
    without them (var: its index only), which is most of the opening time of
    files with tens of thousands of genes.
    """
    lean = {"raw/var", "raw/varm"}
    if merge is None:
        lean |= {"var", "varm", "varp"}
    if uns_merge is None:
        lean.add("uns")
    if not pairwise:
        lean.add("obsp")
    return frozenset(lean)


def _gaps_to_categoricals(adata: AnnDataOOM) -> None:
    """Make obs string columns with NaN gaps (from inputs without them) categorical.

    h5py cannot store such a column as strings; anndata's writers store it as
    a categorical by default, which is what the file then holds.
    """
    obs = adata.obs
    for col in obs.columns:
        c = obs[col]
        if c.dtype == object and pd.api.types.infer_dtype(c, skipna=True) == "string" \
                and c.map(lambda v: isinstance(v, float)).any():
            obs[col] = pd.Categorical(c)


def concat_on_disk(
    in_files: Collection[str | os.PathLike | AnnDataOOM]
    | Mapping[str, str | os.PathLike | AnnDataOOM],
    out_file: str | os.PathLike,
    *,
    axis: Literal[0, "obs"] = 0,
    join: Literal["inner", "outer"] = "inner",
    merge: str | None = None,
    uns_merge: str | None = None,
    label: str | None = None,
    keys: Collection[str] | None = None,
    index_unique: str | None = None,
    fill_value=None,
    pairwise: bool = False,
    zarr_format: int | None = None,
    shards: int | None = None,
    compression: str | None = None,
) -> None:
    """Concatenate AnnData files by rows into one ``.h5ad`` file or ``.zarr`` store.

    The out-of-core counterpart of :func:`anndata.experimental.concat_on_disk`
    with :func:`anndata.concat`'s exact semantics: the result equals
    ``anndata.concat(inputs, ...)`` written to ``out_file``, but X and the
    layers are streamed from the inputs block by block (sparse stays sparse)
    and nothing is loaded whole.  The output is written to a temporary name
    and renamed into place, so an interrupted run leaves no partial output.

    Parameters
    ----------
    in_files
        Paths (``.h5ad`` files, ``.zarr`` stores) or
        :class:`~anndataoom.AnnDataOOM` objects, or a mapping key → input
        whose keys are used as ``keys``.
    out_file
        The ``.h5ad`` file or ``.zarr`` store to write; must not be an input.
    axis
        Only ``0`` (observations) is supported.
    join, merge, uns_merge, label, keys, index_unique, fill_value, pairwise
        As :func:`anndata.concat`.
    zarr_format, shards
        Zarr output: as :func:`anndataoom.io.write_zarr`.
    compression
        ``.h5ad`` output: HDF5 compression (``"gzip"``, ``"lzf"`` or None).

    Raises
    ------
    NotImplementedError
        ``axis`` is not 0, or an outer join of layers some inputs lack.
    ValueError
        No inputs, an unknown option, an output that is not ``.h5ad``/``.zarr``
        or is one of the inputs.

    Examples
    --------
    >>> import anndataoom as oom
    >>> oom.concat_on_disk(["s1.h5ad", "s2.zarr"], "atlas.zarr", join="outer",
    ...                    label="sample", keys=["s1", "s2"])  # doctest: +SKIP
    """
    if axis not in (0, "obs"):
        raise NotImplementedError(
            "concat_on_disk concatenates observations only (axis=0); for axis=1 use "
            "anndata.concat in memory"
        )
    out = os.path.abspath(_fspath(out_file))
    kind = _out_kind(out)
    if isinstance(in_files, Mapping):
        if keys is not None:
            raise TypeError("Cannot specify categories in both mapping keys and using `keys`.")
        keys = list(in_files.keys())
        in_files = list(in_files.values())
    if isinstance(in_files, (str, os.PathLike)):
        raise TypeError("in_files must be a collection of inputs, not a single path")
    if any(isinstance(x, anndata.AnnData) and not isinstance(x, AnnDataOOM) for x in in_files):
        raise TypeError("concat_on_disk takes paths or AnnDataOOM objects; write in-memory "
                        "AnnData to a file first, or use anndata.concat")
    lean = _unused(merge, uns_merge, pairwise)
    seen: dict = {}  # var indices by their stored bytes: read once for inputs sharing them
    opened = [x if isinstance(x, AnnDataOOM) else open_any(x, lean, seen) for x in in_files]
    try:
        _check_layers(opened, join)
        merged = concat(opened, join=join, merge=merge, uns_merge=uns_merge, label=label,
                        keys=keys, index_unique=index_unique, fill_value=fill_value,
                        pairwise=pairwise)
        # anndata.concat keeps string columns as strings; so does the file
        _gaps_to_categoricals(merged)
        if kind == "zarr":
            write_zarr(merged, out, zarr_format=zarr_format, shards=shards,
                       convert_strings_to_categoricals=False)
        else:
            write_h5ad(merged, out, compression=compression,
                       convert_strings_to_categoricals=False)
    finally:
        for a, src in zip(opened, in_files, strict=True):
            if a is not src and isinstance(a, AnnDataOOM):
                a.close()
