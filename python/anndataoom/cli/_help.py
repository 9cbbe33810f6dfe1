"""Help formatting shared by the subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["DefaultsHelpFormatter", "add_cellranger_options", "cellranger_options", "number_above"]


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show ``(default: …)`` only where a default means something.

    Not for required options, ``store_false`` switches (whose default is the
    opposite of what the flag does) and ``None`` defaults (the help text
    says what happens then).
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if (action.required or action.default is None or action.default is argparse.SUPPRESS
                or isinstance(action, argparse._StoreFalseAction)):
            return action.help
        return super()._get_help_string(action)


def number_above(kind: type, low: float, *, inclusive: bool = False) -> Callable[[str], float]:
    """Return an argparse ``type``: ``kind(text)``, refused unless above ``low`` (or equal).

    A bad value then stops at the command line with the option's name,
    not deep in a step with an unrelated error.
    """

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value >= low if inclusive else value > low):
            raise argparse.ArgumentTypeError(
                f"must be {'≥' if inclusive else '>'} {low:g}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def add_cellranger_options(p: argparse.ArgumentParser) -> None:
    """``--genome``, ``--all-features`` and ``--prefix``: how a Cell Ranger input is read."""
    g = p.add_argument_group("Cell Ranger input (.h5 or mtx folder)")
    g.add_argument("--genome", default=None,
                   help="genome of a multi-genome Cell Ranger v2 .h5 (read_10x_h5(genome=))")
    g.add_argument("--all-features", dest="gex_only", action="store_false",
                   help="keep every feature type, not only Gene Expression (gex_only=False)")
    g.add_argument("--prefix", default=None,
                   help="file name prefix in an mtx folder (read_10x_mtx(prefix=))")


def cellranger_options(args: argparse.Namespace) -> dict:
    """Return the reader keywords :func:`add_cellranger_options` collected."""
    return {"genome": args.genome, "gex_only": args.gex_only, "prefix": args.prefix}
