"""Help formatting shared by the subcommands."""

from __future__ import annotations

import argparse

__all__ = ["DefaultsHelpFormatter"]


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
