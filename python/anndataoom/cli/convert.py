"""``anndataoom convert IN OUT``: rewrite a file or store, streaming the matrices."""

from __future__ import annotations

import argparse
from pathlib import Path

from anndataoom.cli._help import (
    DefaultsHelpFormatter,
    add_cellranger_options,
    cellranger_options,
    number_above,
)
from anndataoom.io import write_zarr
from anndataoom.io._any import open_any

_H5AD = (".h5ad", ".h5")
_ZARR = (".zarr",)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser(
        "convert",
        help="rewrite IN as OUT (.h5ad ↔ .zarr), streaming the matrices "
        "(also to change compression or Zarr format)",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("input", help="an .h5ad file, a .zarr store, a Cell Ranger .h5 or mtx folder, "
                   "an .mtx or a .loom file")
    p.add_argument("output", help="the .h5ad file or .zarr store to write (atomically)")
    p.add_argument("--compression", choices=["gzip", "lzf", "none"], default=None,
                   help=".h5ad output only: HDF5 compression (default: none)")
    p.add_argument("--zarr-format", type=int, choices=[2, 3], default=None,
                   help=".zarr output only: Zarr format (default: anndata's setting)")
    p.add_argument("--shards", type=number_above(int, 1, inclusive=True), default=None,
                   help=".zarr output, --zarr-format 3 only: chunks per shard "
                   "(default: no sharding)")
    add_cellranger_options(p)
    p.set_defaults(func=main)


def _kind(what: str, path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in _H5AD:
        return "h5ad"
    if suffix in _ZARR:
        return "zarr"
    raise ValueError(f"{what} '{path}': expected an .h5ad file or a .zarr store")


def _check_options(args: argparse.Namespace, out: str) -> None:
    """Refuse options that do not apply to the output (rather than ignoring them)."""
    if out == "zarr" and args.compression is not None:
        raise ValueError("--compression applies to .h5ad output; a .zarr store is written "
                         "with the Zarr writer's codec")
    if out == "h5ad" and (args.zarr_format is not None or args.shards is not None):
        raise ValueError("--zarr-format and --shards apply to .zarr output")
    if args.shards is not None and args.zarr_format != 3:
        raise ValueError("--shards needs --zarr-format 3 (Zarr v2 has no shards)")


def main(args: argparse.Namespace) -> int:
    """Stream ``input`` into ``output``."""
    out = _kind("output", args.output)
    _check_options(args, out)
    with open_any(args.input, **cellranger_options(args)) as a:
        if out == "zarr":
            write_zarr(a, args.output, zarr_format=args.zarr_format, shards=args.shards)
        else:
            compression = None if args.compression in (None, "none") else args.compression
            a.write_h5ad(args.output, compression=compression)
    print(f"wrote {args.output} ({a.n_obs:,} × {a.n_vars:,})")
    return 0
