"""``anndataoom concat IN... -o OUT``: many files written as one, streamed."""

from __future__ import annotations

import argparse

from anndataoom.io import concat_on_disk

_MERGES = ["same", "unique", "first", "only"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser(
        "concat",
        help="concatenate .h5ad files / .zarr stores by cells into one output "
        "(as anndata.concat, streamed, atomic)",
    )
    p.add_argument("inputs", nargs="+", help="input .h5ad files and .zarr stores")
    p.add_argument("-o", "--output", required=True,
                   help="the .h5ad file or .zarr store to write (atomically)")
    p.add_argument("--join", choices=["inner", "outer"], default="inner",
                   help="keep the genes common to all inputs (inner) or their union (outer)")
    p.add_argument("--label", default=None,
                   help="obs column naming the input each cell came from")
    p.add_argument("--keys", default=None,
                   help="comma-separated names of the inputs (default 0, 1, ...)")
    p.add_argument("--index-unique", default=None,
                   help="make cell names unique as NAME<SEP>KEY with this separator")
    p.add_argument("--merge", choices=_MERGES, default=None,
                   help="how var/varm columns of the inputs are merged")
    p.add_argument("--uns-merge", choices=_MERGES, default=None,
                   help="how uns entries of the inputs are merged")
    p.add_argument("--zarr-format", type=int, choices=[2, 3], default=None,
                   help=".zarr output: Zarr format (default: anndata's setting)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Concatenate ``inputs`` into ``output``."""
    keys = None
    if args.keys is not None:
        keys = args.keys.split(",")
        if len(keys) != len(args.inputs):
            raise ValueError(f"--keys names {len(keys)} inputs, but {len(args.inputs)} were given")
    concat_on_disk(args.inputs, args.output, join=args.join, label=args.label, keys=keys,
                   index_unique=args.index_unique, merge=args.merge,
                   uns_merge=args.uns_merge, zarr_format=args.zarr_format)
    print(f"wrote {args.output} from {len(args.inputs)} inputs")
    return 0
