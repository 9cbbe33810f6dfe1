"""Entry point of the ``anndataoom`` console script."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading

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


@contextlib.contextmanager
def _stop_signals_as_ctrl_c(received: list[int]):
    """Let SIGTERM and SIGHUP stop a command the way Ctrl-C does.

    Their default action kills the process on the spot, leaving its temp
    files; handed to the current SIGINT handler, they unwind through the same
    clean-up, and a rename in progress is finished first. Signals the caller
    set to be ignored are left alone.
    """
    def relay(signum, frame):
        received.append(signum)
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = {}
    if threading.current_thread() is threading.main_thread():  # only it may set handlers
        # an ignored signal stays ignored: `nohup anndataoom run …` must survive a logout
        previous = {s: signal.signal(s, relay) for s in (signal.SIGTERM, signal.SIGHUP)
                    if signal.getsignal(s) == signal.SIG_DFL}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, signal.SIG_DFL if h is None else h)


def _writes_what_it_read():
    """Let the commands write pandas' nullable string columns, as they read them.

    anndata reads such columns (written with ``allow_write_nullable_strings``)
    but refuses to write them back by default; a command whose input has
    them would otherwise fail at its very end.
    """
    import anndata

    return anndata.settings.override(allow_write_nullable_strings=True)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    received: list[int] = []
    try:
        with _stop_signals_as_ctrl_c(received), _writes_what_it_read():
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # a closed pipe shows here, not in Python's exit flush
            return code
    except BrokenPipeError:
        # The reader of our output went away (`anndataoom run … | head`): stop
        # quietly, as a program killed by SIGPIPE does, without a second error
        # when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except (OSError, ValueError, KeyError, IndexError, NotImplementedError) as e:
        # str() of a KeyError is its repr: quoted, escaped; an OSError's starts "[Errno N]"
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        if isinstance(e, OSError) and e.strerror:
            msg = e.strerror + (f": '{e.filename}'" if e.filename else "")
        print(f"anndataoom: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        signum = received[0] if received else signal.SIGINT
        name = "" if signum == signal.SIGINT else f" ({signal.Signals(signum).name})"
        print(f"anndataoom: interrupted{name}", file=sys.stderr)
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
