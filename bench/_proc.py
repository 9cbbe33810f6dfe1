"""Run one command and measure it: wall, CPU (user+sys) and true peak RSS.

Peak RSS is the largest of

- the summed ``VmRSS`` of the child and all its descendants, polled from
  ``/proc/<pid>/status`` every :data:`POLL_S` seconds (counts worker
  processes alive at the same time);
- the largest ``VmHWM`` (the kernel's high-water mark of one process's
  resident set since its ``exec``) seen in the same polls, which catches
  spikes shorter than the poll interval;
- ``ru_maxrss`` of the child from :func:`os.wait4`, which also covers the
  last poll interval and reaped descendants, but only when it exceeds the
  runner's own ``VmHWM``: Linux carries the pre-``exec`` address space's
  high-water mark into ``ru_maxrss``, and that address space is the
  runner's (``subprocess`` uses vfork), so a smaller value says nothing
  about the child.

CPU time is ``ru_utime + ru_stime`` from :func:`os.wait4`, which includes
the threads of the child and every descendant it waited for.  The child
runs in its own session, so a timeout, or a tree RSS above ``rss_limit``
(to fail before the kernel's OOM killer picks a victim on a shared machine),
kills the whole process tree.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.01


@dataclass
class Measurement:
    """What :func:`run_measured` observed (bytes and seconds)."""

    wall: float
    cpu_user: float
    cpu_sys: float
    #: Largest summed VmRSS of the process tree over the polls.
    peak_rss_polled: int
    #: Largest VmHWM of any one process of the tree over the polls.
    peak_hwm_polled: int
    #: ``ru_maxrss`` from wait4, raw (includes the runner's own high-water mark).
    ru_maxrss: int
    #: The runner's VmHWM when it started the child.
    runner_hwm: int
    exit_code: int | None
    #: ``"timeout"`` or ``"rss-limit"`` when the runner killed the tree, else None.
    killed_for: str | None

    @property
    def cpu(self) -> float:
        """User + system CPU seconds."""
        return self.cpu_user + self.cpu_sys

    @property
    def peak_rss(self) -> int:
        """True peak RSS of the process tree, in bytes."""
        ru = self.ru_maxrss if self.ru_maxrss > self.runner_hwm else 0
        return max(self.peak_rss_polled, self.peak_hwm_polled, ru)


def _children(pid: int) -> list[int]:
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids.extend(int(c) for c in fh.read().split())
    except (FileNotFoundError, ProcessLookupError):
        pass
    return kids


def _rss_hwm(pid: int | str) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of one process in bytes; zeros once it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return rss, hwm


def tree_rss(pid: int) -> tuple[int, int]:
    """Return the summed VmRSS of ``pid`` and its descendants, and their largest VmHWM."""
    total, hwm, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        rss, h = _rss_hwm(p)
        total, hwm = total + rss, max(hwm, h)
        todo.extend(_children(p))
    return total, hwm


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_measured(
    cmd: list[str],
    *,
    stdout: Path,
    stderr: Path,
    timeout: float,
    rss_limit: int,
    env: dict | None = None,
    cwd: Path | None = None,
) -> Measurement:
    """Run ``cmd`` to completion, ``timeout`` seconds or ``rss_limit`` bytes."""
    runner_hwm = _rss_hwm("self")[1]
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True,
        )
    peak, peak_hwm, killed_for = 0, 0, None
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss, hwm = tree_rss(proc.pid)
            peak, peak_hwm = max(peak, rss), max(peak_hwm, hwm)
            if peak > rss_limit:
                killed_for = "rss-limit"
            elif time.perf_counter() - t0 > timeout:
                killed_for = "timeout"
            if killed_for:
                _kill_group(proc.pid)
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(POLL_S)
    except BaseException:  # e.g. Ctrl-C: the child is in another session, end it too
        _kill_group(proc.pid)
        raise
    wall = time.perf_counter() - t0
    _kill_group(proc.pid)  # stray descendants left by the child, if any
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measurement(
        wall=wall,
        cpu_user=usage.ru_utime,
        cpu_sys=usage.ru_stime,
        peak_rss_polled=peak,
        peak_hwm_polled=peak_hwm,
        ru_maxrss=usage.ru_maxrss * 1024,
        runner_hwm=runner_hwm,
        exit_code=None if killed_for else proc.returncode,
        killed_for=killed_for,
    )
