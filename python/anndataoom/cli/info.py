"""``anndataoom info FILE``: what a file or store holds, without loading it."""

from __future__ import annotations

import argparse
import contextlib
import os

import h5py

from anndataoom import _oom
from anndataoom._core._repr import _disk_size
from anndataoom.cli._help import add_cellranger_options, cellranger_options
from anndataoom.io._any import input_kind, open_any
from anndataoom.io._h5plugins import with_filter_plugins
from anndataoom.io._read import open_ro


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser(
        "info", help="describe an .h5ad file, a .zarr store, a 10x .h5 or .mtx directory, an "
        ".mtx or a .loom file (shape, storage, columns)"
    )
    p.add_argument("file", help="path to the file or store")
    add_cellranger_options(p)
    p.set_defaults(func=main)


def _storage(ds) -> str:
    if not isinstance(ds, h5py.Dataset):
        codecs = [type(c).__name__ for c in (*ds.filters, *ds.compressors)] or ["none"]
        shards = f", shards {ds.shards}" if getattr(ds, "shards", None) else ""
        return (f"{ds.dtype}, zarr v{ds.metadata.zarr_format} {'+'.join(codecs)}, "
                f"chunks {ds.chunks}{shards}")
    comp = ds.compression or "none"
    if ds.compression_opts is not None and ds.compression == "gzip":
        comp = f"gzip({ds.compression_opts})"
    chunks = "contiguous" if ds.chunks is None else f"chunks {ds.chunks}"
    return f"{ds.dtype}, {comp}, {chunks}"


def _is_group(node) -> bool:
    return hasattr(node, "keys")


@contextlib.contextmanager
def _open(path: str):
    if os.path.isdir(path):
        import zarr

        yield zarr.open_group(path, mode="r")
    else:
        with open_ro(path) as f:
            yield f


def _describe_input(path: str, kind: str, reader: dict) -> list[tuple[str, str]]:
    """Rows for inputs that are not AnnData stores (Cell Ranger, MTX, loom), opened lazily."""
    with open_any(path, **reader) as a:
        X = a.X
        rows = [("file", f"{path} ({_disk_size(path) / 2**20:,.1f} MiB, {kind})"),
                ("shape", f"{a.n_obs:,} cells × {a.n_vars:,} genes"),
                ("X format", X.source_format)]
        for name, df in (("obs", a.obs), ("var", a.var)):
            rows.append((f"{name} columns", ", ".join(map(str, df.columns)) or "–"))
        if a.layers:
            rows.append(("layers", ", ".join(sorted(a.layers))))
    return rows


def describe(path: str, reader: dict | None = None) -> list[tuple[str, str]]:
    """Rows of ``(field, value)`` describing the file at ``path``.

    ``reader``: the Cell Ranger reader options (see ``cellranger_options``).
    """
    reader = reader or {}
    kind = input_kind(path, reader.get("prefix"))
    if kind not in ("h5ad", "zarr"):
        return _describe_input(path, kind, reader)
    m = with_filter_plugins(lambda: _oom.open(path, "X"))
    n_obs, n_vars = m.shape
    rows = [
        ("file", f"{path} ({_disk_size(path) / 2**20:,.1f} MiB)"),
        ("shape", f"{n_obs:,} cells × {n_vars:,} genes"),
        ("X format", m.format),
    ]
    if m.stored_nnz is not None and n_obs * n_vars:
        rows.append(("density", f"{m.stored_nnz / (n_obs * n_vars):.2%} ({m.stored_nnz:,} stored)"))
    with _open(path) as f:
        x = f["X"]
        parts = ["data", "indices", "indptr"] if _is_group(x) else []
        for name in parts:
            rows.append((f"X/{name}", _storage(x[name])))
        if not _is_group(x):
            rows.append(("X", _storage(x)))
        for group in ("obs", "var"):
            if group in f and _is_group(f[group]):
                cols = [k for k in f[group].keys() if k != f[group].attrs.get("_index", "_index")]
                rows.append((f"{group} columns", ", ".join(cols) or "–"))
        for group in ("obsm", "varm", "layers", "obsp", "uns"):
            if group in f:
                rows.append((group, ", ".join(sorted(f[group].keys())) or "–"))
        if "raw" in f:
            rows.append(("raw", "present"))
    return rows


def main(args: argparse.Namespace) -> int:
    """Print the description."""
    rows = describe(args.file, cellranger_options(args))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0
