"""Scripts run as separate processes by the crash-safety tests."""

from __future__ import annotations

import hashlib
import sys
import time


def write(src: str, dst: str) -> None:
    """Stream ``src`` to ``dst`` (``.zarr``: a store, else ``.h5ad``); killed at random points."""
    import anndataoom as oom

    a = oom.read(src)
    print("ready", flush=True)
    if dst.endswith(".zarr"):
        a.write_zarr(dst)
    else:
        a.write_h5ad(dst, compression="gzip")
    print("done", flush=True)


def read_loop(path: str, seconds: str) -> None:
    """Read X fully, repeatedly, for ``seconds``; print the sums seen."""
    import anndataoom as oom

    end = time.time() + float(seconds)
    sums = set()
    n = 0
    while time.time() < end or n < 2:
        a = oom.read(path)
        m = a.X.to_memory()
        sums.add(round(float(m.sum()), 3))
        sums.add(round(float(a.X.sum()), 3))
        a.close()
        n += 1
    print(f"ok {n} {sorted(sums)}", flush=True)


def hold_for_writing(path: str, seconds: str) -> None:
    """Keep ``path`` open read-write in h5py (with HDF5 file locking on)."""
    import h5py

    with h5py.File(path, "r+", locking=True) as f:
        f.attrs["touched"] = 1
        f.flush()
        print("holding", flush=True)
        time.sleep(float(seconds))


def sha(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()




def interrupt_pass(path: str, what: str) -> None:
    """Start a long pass; the parent sends SIGINT. Report how it ended and
    whether the object is still usable afterwards.
    """
    import signal

    # A pytest-xdist worker's state reaches this child through exec: a SIGINT
    # ignored or blocked there stays so here (seen once the suite had grown).
    # Report it, then start as a shell would, before importing anndataoom.
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    print(f"inherited SIGINT handler {signal.getsignal(signal.SIGINT)!r}, blocked {blocked}",
          file=sys.stderr, flush=True)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    signal.signal(signal.SIGINT, signal.default_int_handler)

    import numpy as np

    import anndataoom as oom

    a = oom.read(path)
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler or \
            signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []):
        print("anndataoom changed SIGINT", file=sys.stderr, flush=True)
    print("start", flush=True)
    t0 = time.time()
    try:
        if what == "sum":
            a.X.sum()
        elif what == "to_memory":
            a.X.to_memory()
        else:
            for _ in a.X.chunked(4096):
                pass
        print(f"finished {time.time() - t0:.2f}", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted {time.time():.3f}", flush=True)
    tail = a[-7:].X
    print("usable", float(np.asarray(tail.sum(axis=1)).sum()), float(tail.to_memory().sum()), flush=True)


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
