"""``anndataoom convert IN OUT``: rewrite a file, streaming X."""

from __future__ import annotations

import argparse

from anndataoom import read


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser("convert", help="rewrite IN as OUT (.h5ad), streaming the matrix")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--compression", choices=["gzip", "lzf", "none"], default="none")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Stream ``input`` into ``output``."""
    compression = None if args.compression == "none" else args.compression
    with read(args.input) as a:
        a.write_h5ad(args.output, compression=compression)
    print(f"wrote {args.output}")
    return 0
