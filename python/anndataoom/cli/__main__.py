"""Entry point of the ``anndataoom`` console script."""

from __future__ import annotations

import argparse
import sys

from anndataoom.cli import concat, convert, info, run


def build_parser() -> argparse.ArgumentParser:
    """All subcommands and their options."""
    parser = argparse.ArgumentParser(
        prog="anndataoom",
        description="Out-of-memory single-cell preprocessing on .h5ad files.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    info.add_parser(sub)
    run.add_parser(sub)
    convert.add_parser(sub)
    concat.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (OSError, ValueError, KeyError, IndexError) as e:
        # str() of a KeyError is its repr: quoted, escaped.
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"anndataoom: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("anndataoom: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
