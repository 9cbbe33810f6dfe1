"""``anndataoom convert IN OUT``: rewrite a file, streaming X."""

from __future__ import annotations

import argparse
from pathlib import Path

from anndataoom import read

_H5AD = (".h5ad", ".h5")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser(
        "convert",
        help="rewrite IN as OUT (.h5ad), streaming the matrix (e.g. to change compression)",
    )
    p.add_argument("input", help="an .h5ad file")
    p.add_argument("output", help="the .h5ad file to write (written atomically)")
    p.add_argument("--compression", choices=["gzip", "lzf", "none"], default="none")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Stream ``input`` into ``output``."""
    for what, path in (("input", args.input), ("output", args.output)):
        if Path(path).suffix.lower() not in _H5AD:
            raise ValueError(
                f"{what} '{path}': only .h5ad files are supported by this version "
                "(Zarr stores are not yet)"
            )
    compression = None if args.compression == "none" else args.compression
    with read(args.input) as a:
        a.write_h5ad(args.output, compression=compression)
    print(f"wrote {args.output} ({a.n_obs:,} × {a.n_vars:,})")
    return 0
