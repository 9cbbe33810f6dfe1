"""Crash safety: SIGKILLed writers, read-only opens, concurrent readers."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import anndataoom as oom
from anndataoom.io._write import TMP_PREFIX
from anndataoom.testing import gen_h5ad

HERE = os.path.dirname(os.path.abspath(__file__))


def _sha(path) -> str:
    """Hash of a file, or of every file (names and bytes) of a store directory."""
    h = hashlib.sha256()
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in paths:
        h.update(str(p.relative_to(path) if path.is_dir() else "").encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _remove(path) -> None:
    if path.is_dir():
        import shutil

        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _spawn(*args, env=None) -> subprocess.Popen:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.Popen([sys.executable, os.path.join(HERE, "_proc.py"), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)


def _wait_line(p: subprocess.Popen, want: str, timeout: float = 60) -> None:
    t0 = time.time()
    line = p.stdout.readline()
    assert line.strip() == want, (line, p.stderr.read() if p.poll() is not None else "")
    assert time.time() - t0 < timeout


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A file big enough that writing it takes a good fraction of a second."""
    d = tmp_path_factory.mktemp("src")
    path = d / "src.h5ad"
    mem = gen_h5ad(path, 10_000, 400, density=0.1, compression="gzip", seed=5)
    return path, mem


def _temp_files(directory) -> list[str]:
    return [n for n in os.listdir(directory) if n.startswith(TMP_PREFIX)]


def _check_complete(path, mem) -> None:
    a = oom.read(path)
    np.testing.assert_array_equal(a.X.to_memory().toarray(), mem.X.toarray())
    assert list(a.obs_names) == list(mem.obs_names)
    a.close()


@pytest.mark.parametrize("ext", [".h5ad", ".zarr"])
def test_sigkill_during_write(source, tmp_path, ext):
    """Killed at random points, a writer leaves the old target intact (or no
    file, or the complete new one); the next write removes its temp files.

    Rounds alternate between an existing target and none; ``.zarr`` targets
    are store directories (replaced by two renames).
    """
    src, mem = source
    out = tmp_path / "out"
    out.mkdir()
    target = out / f"target{ext}"
    small = tmp_path / "small.h5ad"
    gen_h5ad(small, 5, 3)
    # How long a full write takes (in this process; the child is similar).
    t0 = time.time()
    with oom.read(src) as a:
        a.write_zarr(out / "timing.zarr") if ext == ".zarr" else a.write_h5ad(
            out / "timing.h5ad", compression="gzip")
    full = time.time() - t0
    _remove(out / f"timing{ext}")

    rng = random.Random(1234)
    outcomes = []
    for k in range(6):
        old_sha = None
        if k % 2:
            with oom.read(small) as old:
                old.write_zarr(target) if ext == ".zarr" else old.write_h5ad(target)
            old_sha = _sha(target)
        else:
            _remove(target)
        p = _spawn("write", src, target)
        _wait_line(p, "ready")
        time.sleep(rng.uniform(0.0, full * 1.2))
        p.send_signal(signal.SIGKILL)
        p.communicate()  # reaps it and closes its pipes
        if not target.exists():
            assert old_sha is None, "the old target vanished"
            outcomes.append("absent")
        elif old_sha is not None and _sha(target) == old_sha:
            outcomes.append("old")
        else:
            _check_complete(target, mem)  # renamed into place: complete
            outcomes.append("new")
    print("outcomes:", outcomes)
    # The next run (a new process) removes the temp files of the killed ones.
    p = _spawn("write", src, out / f"final{ext}")
    _wait_line(p, "ready")
    _wait_line(p, "done")
    p.communicate()
    assert p.returncode == 0
    assert _temp_files(out) == []
    _check_complete(out / f"final{ext}", mem)


def test_write_failure_keeps_old_file_and_no_temp(source, tmp_path, monkeypatch):
    """An exception (or KeyboardInterrupt) mid-write: old target intact, no temp file."""
    import anndataoom.io._write as w

    src, _ = source
    target = tmp_path / "t.h5ad"
    gen_h5ad(target, 5, 3)
    before = _sha(target)
    a = oom.read(src)
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        calls = {"n": 0}
        orig = w.write_elem

        def failing(*args, _exc=exc, _calls=calls, _orig=orig, **kw):
            _calls["n"] += 1
            if _calls["n"] == 3:
                raise _exc
            return _orig(*args, **kw)

        monkeypatch.setattr(w, "write_elem", failing)
        with pytest.raises(type(exc)):
            a.write_h5ad(target)
        monkeypatch.setattr(w, "write_elem", orig)
        assert _sha(target) == before
        assert _temp_files(tmp_path) == []
    a.close()


@pytest.mark.parametrize("fmt", ["csr", "csc", "dense"])
def test_read_only_never_changes_bytes(sandbox, tmp_path, fmt):
    """Opening and reading every way leaves the file's bytes, mtime and directory unchanged."""
    p = tmp_path / f"ro_{fmt}.h5ad"
    gen_h5ad(p, 300, 50, fmt=fmt, density=0.2, compression="gzip", chunks=64)
    before = (_sha(p), os.stat(p).st_mtime_ns, sorted(os.listdir(tmp_path)))
    r = sandbox.call("_cases.read_x", str(p))
    assert r["shape"] == [300, 50]
    sandbox.call("_cases.index", str(p), ("intarr", [5, 1, 5, 299]), ("slice", [None, None, -1]))
    after = (_sha(p), os.stat(p).st_mtime_ns, sorted(os.listdir(tmp_path)))
    assert after == before


def test_two_processes_read_at_once(source):
    src, mem = source
    expected = round(float(mem.X.sum()), 3)
    procs = [_spawn("read_loop", src, 2) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.startswith("ok "), (out, err)
        assert out.strip().endswith(f"[{expected}]"), out


def test_reader_while_h5py_holds_file_for_writing(tmp_path):
    """HDF5 file locking is off for our read-only opens: a reader succeeds
    while another process has the file open read-write (h5py, locking on).
    """
    p = tmp_path / "held.h5ad"
    mem = gen_h5ad(p, 100, 20, density=0.3)
    holder = _spawn("hold_for_writing", p, 60)
    try:
        _wait_line(holder, "holding")
        reader = _spawn("read_loop", p, 0.5)
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err
        assert out.strip().endswith(f"[{round(float(mem.X.sum()), 3)}]"), out
    finally:
        holder.kill()
        holder.communicate()


def test_reader_while_this_process_has_the_file_open_in_h5py(tmp_path):
    """h5py (or anndata's backed mode) holding the file in this process, with
    HDF5 locking on: our metadata reader opens it with the same flags."""
    import anndata as ad
    import h5py

    p = tmp_path / "mine.h5ad"
    mem = gen_h5ad(p, 50, 20, density=0.3)
    for holder in (lambda: h5py.File(p, "r"), lambda: ad.read_h5ad(p, backed="r").file):
        h = holder()
        try:
            a = oom.read(p)
            np.testing.assert_allclose(a.X.sum(), mem.X.sum(), rtol=1e-6)
            assert list(a.obs_names) == list(mem.obs_names)
        finally:
            h.close()


def _replace_before_matrices_open(monkeypatch, path, replacements) -> list:
    """Make the core's opens see ``path`` replaced (atomically, as a writer does) after
    obs/var were read: the next file of ``replacements`` each time, for as many as given."""
    from anndataoom.io import _read

    real, pending = _read._assemble, list(replacements)

    def assemble(*args, **kwargs):
        if pending:
            os.replace(pending.pop(0), path)
        return real(*args, **kwargs)

    monkeypatch.setattr(_read, "_assemble", assemble)
    return pending


def test_file_replaced_while_opening_is_opened_again(tmp_path, monkeypatch):
    """A writer renaming a new file onto the path between our opens: obs and X both come
    from the new file (before, the old obs were paired with the new X: same shape, wrong data)."""
    path, new = tmp_path / "f.h5ad", tmp_path / "new.h5ad"
    gen_h5ad(path, 40, 10, seed=1)
    fresh = gen_h5ad(new, 40, 10, seed=2)
    fresh_names = list(fresh.obs_names)
    pending = _replace_before_matrices_open(monkeypatch, path, [new])
    a = oom.read(path)
    assert not pending
    assert list(a.obs_names) == fresh_names
    np.testing.assert_array_equal(a.X.to_memory().toarray(), fresh.X.toarray())
    np.testing.assert_array_equal(a.obs.to_numpy(), fresh.obs.to_numpy())


def test_file_replaced_at_every_open_gives_up_with_a_read_error(tmp_path, monkeypatch):
    path = tmp_path / "f.h5ad"
    gen_h5ad(path, 10, 5, seed=1)
    copies = []
    for k in range(8):
        copies.append(tmp_path / f"copy{k}.h5ad")
        gen_h5ad(copies[-1], 10, 5, seed=k + 2)
    _replace_before_matrices_open(monkeypatch, path, copies)
    with pytest.raises(oom.AnnDataReadError, match="replaced 5 times while being opened"):
        oom.read(path)


@pytest.mark.parametrize("fmt", ["csr", "dense"])
def test_file_rewritten_in_place_after_opening_is_an_error(tmp_path, fmt):
    """anndata (h5py mode "w") truncates and rewrites the same inode: reads by the offsets
    found at open would mix the old layout with the new bytes, silently. They refuse."""
    path = tmp_path / "f.h5ad"
    gen_h5ad(path, 300, 40, fmt=fmt, density=0.3, seed=1)
    a = oom.read(path)
    other = gen_h5ad(tmp_path / "other.h5ad", 300, 40, fmt=fmt, density=0.2, seed=2)
    inode = os.stat(path).st_ino
    other.write_h5ad(path)
    assert os.stat(path).st_ino == inode
    with pytest.raises(oom.AnnDataReadError, match="changed on disk after it was opened"):
        a.X.to_memory()
    np.testing.assert_array_equal(oom.read(path).X.to_memory().toarray() if fmt == "csr"
                                  else oom.read(path).X.to_memory(), np.asarray(
                                      other.X.toarray() if fmt == "csr" else other.X))
