"""The sandbox: every risky call of the reliability tests runs in a child process.

``sandbox.call("module.func", *args, timeout=...)`` runs ``func`` from a
module in this directory inside a long-lived worker process and returns its
(JSON) result, or re-raises its exception in the test as the same class
(builtins and :mod:`anndataoom.exceptions`) with the same message.  A worker
that dies by a signal (segfault, abort) or does not answer within the
timeout fails the test with :class:`SandboxCrash` and is replaced, so a
crash or a hang fails one test, never the runner.
"""

from __future__ import annotations

import builtins
import json
import os
import selectors
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


class SandboxCrash(Exception):
    """The case crashed or hung the worker process."""


class ChildError(Exception):
    """An exception of a class that cannot be rebuilt in the parent."""

    def __init__(self, resp: dict):
        super().__init__(f"{resp['module']}.{resp['name']}: {resp['msg']}")
        self.resp = resp


def _rebuild(resp: dict) -> BaseException:
    from anndataoom import exceptions

    cls = None
    if resp["module"] == "builtins":
        cls = getattr(builtins, resp["name"], None)
    elif resp["module"] in ("anndataoom", "anndataoom.exceptions", "anndataoom._oom"):
        cls = getattr(exceptions, resp["name"], None)
    if cls is None or resp["name"] in ("PanicException",):
        e = ChildError(resp)
    else:
        try:
            e = cls(resp["msg"])
        except Exception:  # noqa: BLE001
            e = ChildError(resp)
    e.child_traceback = resp["tb"]
    return e


class Sandbox:
    def __init__(self, env: dict | None = None):
        self.env = env
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        env = dict(os.environ)
        env.update(self.env or {})
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "_worker.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
            text=True, bufsize=1, env=env, cwd=HERE,
        )

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.communicate()  # reaps it and closes its pipes
        self.proc = None

    def call(self, fn: str, *args, timeout: float = 60.0):
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        proc = self.proc
        proc.stdin.write(json.dumps({"fn": fn, "args": list(args)}) + "\n")
        proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
        sel.close()
        if not ready:
            self._kill()
            raise SandboxCrash(f"{fn}{tuple(args)} hung (no answer within {timeout} s)")
        line = proc.stdout.readline()
        if not line:
            proc.communicate()  # reaps it and closes its pipes
            rc = proc.returncode
            self.proc = None
            how = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit code {rc}"
            raise SandboxCrash(f"{fn}{tuple(args)} crashed the worker ({how})")
        resp = json.loads(line)
        if resp["ok"]:
            return resp["value"]
        raise _rebuild(resp)

    def close(self) -> None:
        if self.proc is not None:
            try:
                # closes stdin (the worker's cue to exit), reaps it, closes its pipes
                self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
        self.proc = None




def assert_not_internal(e: BaseException) -> None:
    """A typed error, not a panic turned into RuntimeError."""
    assert not isinstance(e, (RuntimeError, ChildError, SandboxCrash)), e
    assert "internal error" not in str(e), e
