"""A write the operating system refuses: a typed OSError that says why and where, nothing left behind."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest

import anndataoom as oom
from anndataoom.io import _write

TARGETS = ["out.h5ad", "out.zarr"]


def _write_in_child(src, target, before: str) -> dict:
    """Open ``src``, run ``before`` (which may drop rights or limit the file size), write ``target``.

    A child process, since both the limits and the user switch are for the whole process.
    """
    code = textwrap.dedent(f"""
        import json, os, resource, signal
        import anndataoom as oom
        a = oom.read({str(src)!r})
        {before}
        try:
            a.write_h5ad({target!r}) if {target!r}.endswith(".h5ad") else a.write_zarr({target!r})
            print(json.dumps({{"raised": None}}))
        except Exception as e:
            print(json.dumps({{"raised": type(e).__name__, "errno": getattr(e, "errno", None),
                               "message": str(e)}}))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def _leftovers(directory) -> list[str]:
    return [n for n in os.listdir(directory) if n.startswith(_write.TMP_PREFIX)]


@pytest.mark.parametrize("name", TARGETS)
def test_file_size_limit_is_an_os_error_with_the_reason(make_h5ad, tmp_path, name):
    """HDF5 buries the system error under "direct chunk write failed", Zarr under its codec
    layers; the user gets ``OSError(EFBIG)`` as for a full disk, and the old target stays.
    """
    src, _ = make_h5ad(n_obs=20_000, n_vars=300, density=0.1, seed=1)
    out = tmp_path / "out"
    out.mkdir()
    target = out / name
    small, _ = make_h5ad(n_obs=5, n_vars=3)
    with oom.read(small) as old:
        old.write_h5ad(target) if name.endswith(".h5ad") else old.write_zarr(target)
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    limit = "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); " \
            "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))"
    got = _write_in_child(src, str(target), limit)
    assert got["raised"] == "OSError", got
    assert got["errno"] == errno.EFBIG
    assert got["message"].endswith(os.strerror(errno.EFBIG)), got
    assert "X" in got["message"]  # which element failed
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert oom.read(target).shape == (5, 3) if name.endswith(".h5ad") else \
        oom.read_zarr(target).shape == (5, 3)


@pytest.mark.parametrize("name", TARGETS)
def test_unwritable_directory_is_named(make_h5ad, tmp_path, name):
    """The error names the directory to fix, not the temp file we would have made in it."""
    src, _ = make_h5ad(n_obs=50, n_vars=20)
    out = tmp_path / "locked"
    out.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: drop to nobody after opening the source
        before = "os.setuid(65534)"
    else:
        os.chmod(out, 0o555)
        before = ""
    try:
        got = _write_in_child(src, str(out / name), before)
    finally:
        os.chmod(out, 0o755)
    assert got["raised"] == "PermissionError", got
    assert got["errno"] == errno.EACCES
    assert f"cannot write in '{out}'" in got["message"]
    assert _write.TMP_PREFIX not in got["message"]
    assert os.listdir(out) == []


@pytest.mark.parametrize("name", TARGETS)
def test_parent_that_is_a_file(small_file, tmp_path, name):
    """``convert p.h5ad p.h5ad/o.h5ad``: the parent is a file, which the message says."""
    parent = tmp_path / "p.h5ad"
    parent.write_bytes(b"keep")
    a = oom.read(small_file)
    with pytest.raises(NotADirectoryError, match="it is a file"):
        a.write_h5ad(parent / name) if name.endswith(".h5ad") else a.write_zarr(parent / name)
    assert parent.read_bytes() == b"keep"
