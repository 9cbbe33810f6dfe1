"""Scale limits without a 16 GB fixture: more than 2^31 stored entries with an
int64 indptr (a sparse on-disk file of a few KB, see ``_bigfile.py``),
Ctrl-C during a long pass, and (slow tier) full passes with bounded memory.

n_obs > 2^31 is not exercised: indptr is held in memory (8 bytes a row), so
such a file needs > 16 GB of RAM by design.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import _bigfile
import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "nnz_over_2_31.h5ad"
    info = _bigfile.make(path, n_gap=1)
    return str(path), info


def test_file_is_small_and_nnz_over_2_31(big):
    path, info = big
    assert os.path.getsize(path) < 1 << 20
    assert info["nnz"] > 2**31


def test_open_reports_shape_and_nnz(sandbox, big):
    path, info = big
    r = sandbox.call("_cases.big_summary", path)
    assert r["shape"] == [info["n_obs"], info["n_vars"]]
    assert r["nnz"] == info["nnz"]
    assert r["blocks"][0] == [0, 1]  # the one huge row is a block of its own


def test_rows_beyond_2_31(sandbox, big):
    """Rows whose entries sit past 2^31: values, gathers and sums are exact."""
    path, info = big
    tail, g = info["tail"], info["n_gap"]
    r = sandbox.call("_cases.big_rows", path, list(range(g, info["n_obs"])))
    np.testing.assert_array_equal(np.array(r["dense"]), tail)
    np.testing.assert_array_equal(r["sum0"], tail.sum(0))
    np.testing.assert_array_equal(r["sum1"], tail.sum(1))
    order = [g + 6, g + 2, g, g + 6, g + 3]
    r = sandbox.call("_cases.big_rows", path, order)
    np.testing.assert_array_equal(np.array(r["dense"]), tail[[o - g for o in order]])
    r = sandbox.call("_cases.big_rows", path, [g + 4], [0, 49, 3])
    np.testing.assert_array_equal(np.array(r["dense"]), tail[[4]][:, [0, 49, 3]])


@pytest.mark.parametrize("what", ["sum", "chunked"])
def test_ctrl_c_stops_long_pass_promptly(tmp_path, what):
    """SIGINT during a pass over 2^31 entries: KeyboardInterrupt within a
    couple of seconds, and the object stays usable.
    """
    path = tmp_path / "many_rows.h5ad"
    info = _bigfile.make(path, n_gap=1 << 16)
    env = dict(os.environ, OOM_TMPDIR=str(tmp_path / "spill"))
    os.mkdir(env["OOM_TMPDIR"])
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "_proc.py"), "interrupt_pass", str(path), what],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "start"
        time.sleep(1.5)
        sent = time.time()
        p.send_signal(signal.SIGINT)
        line = p.stdout.readline().split()
        assert line and line[0] == "interrupted", (line, p.stderr.read() if p.poll() is not None else "")
        assert float(line[1]) - sent < 3.0, "Ctrl-C took too long to stop the pass"
        usable = p.stdout.readline().split()
        assert usable[0] == "usable", usable
        assert float(usable[1]) == float(usable[2]) == float(info["tail"].sum())
        assert p.wait(60) == 0
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()  # reaps it and closes its pipes
    assert os.listdir(env["OOM_TMPDIR"]) == []


def _peak_rss_child(code: str, timeout: float = 1800) -> tuple[str, int]:
    """Run ``code`` in a fresh interpreter; its stdout and peak RSS (bytes)."""
    wrapper = code + "\nimport resource\nprint('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True,
                         timeout=timeout, cwd=HERE)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    peak = int(lines[-1].split()[1]) * 1024
    return "\n".join(lines[:-1]), peak


@pytest.mark.slow
def test_full_pass_over_2_31_entries_bounded_memory(tmp_path):
    """Row and column sums over all 2^31 + entries (1M+ rows), peak RSS < 1.5 GiB."""
    path = tmp_path / "full.h5ad"
    info = _bigfile.make(path, n_gap=1 << 20)
    out, peak = _peak_rss_child(
        "import anndataoom as oom, numpy as np\n"
        f"a = oom.read({str(path)!r})\n"
        "r = a.X.sum(axis=1); c = a.X.sum(axis=0)\n"
        "print(repr(r[-7:].tolist())); print(repr(c.tolist())); print(float(r[:-7].sum()))\n"
    )
    rows, cols, gap = out.splitlines()
    np.testing.assert_array_equal(eval(rows), info["tail"].sum(1))
    np.testing.assert_array_equal(eval(cols), info["tail"].sum(0))
    assert float(gap) == 0.0
    assert peak < 1.5 * 2**30, f"peak RSS {peak / 2**30:.2f} GiB"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_million_rows_bounded_memory(tmp_path, fmt):
    """A 1M-row file: sums and a scattered subset exact, peak RSS bounded."""
    from anndataoom.testing import gen_h5ad

    path = tmp_path / f"m1_{fmt}.h5ad"
    mem = gen_h5ad(path, 1_000_000, 64, fmt=fmt, density=0.05, compression="gzip",
                   indptr_dtype="int64", obs_extra=False)
    X = mem.X.tocsr()
    expect_r = np.asarray(X.sum(axis=1)).ravel()
    expect_c = np.asarray(X.sum(axis=0)).ravel()
    rows = np.random.default_rng(0).integers(0, 1_000_000, size=500)
    del mem
    r, c, s = (str(tmp_path / n) for n in ("r.npy", "c.npy", "s.npy"))
    _, peak = _peak_rss_child(
        "import anndataoom as oom, numpy as np\n"
        f"a = oom.read({str(path)!r})\n"
        f"np.save({r!r}, a.X.sum(axis=1)); np.save({c!r}, a.X.sum(axis=0))\n"
        f"np.save({s!r}, a[{rows.tolist()!r}].X.to_memory().toarray())\n"
    )
    np.testing.assert_allclose(np.load(tmp_path / "r.npy"), expect_r, rtol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), expect_c, rtol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), X[rows].toarray())
    assert peak < 1.0 * 2**30, f"peak RSS {peak / 2**30:.2f} GiB"


@pytest.mark.parametrize("fmt", ["csr", "dense"])
def test_to_memory_peak_near_one_copy(tmp_path, fmt):
    """``X.to_memory()`` of many blocks: the peak above the open object stays near the
    result's size (stacking all blocks into a new matrix took twice that).

    The child reads its own high-water mark (VmHWM, reset by exec); ``ru_maxrss``
    would carry over this process's peak from the fork.
    """
    from anndataoom.testing import gen_h5ad

    path = tmp_path / f"x_{fmt}.h5ad"
    n_obs, n_vars, density = (150_000, 1000, 0.1) if fmt == "csr" else (40_000, 1000, 1.0)
    mem = gen_h5ad(path, n_obs, n_vars, fmt=fmt, density=density, obs_extra=False)
    want = float(mem.X.sum(dtype=np.float64))
    del mem
    code = (
        "import anndataoom as oom, numpy as np, scipy.sparse as sp\n"
        "def hwm():\n"
        "    with open('/proc/self/status') as f:\n"
        "        return next(int(l.split()[1]) * 1024 for l in f if l.startswith('VmHWM'))\n"
        f"a = oom.read({str(path)!r})\n"
        "assert len(a.X.blocks()) >= 4\n"
        "before = hwm()\n"
        "m = a.X.to_memory()\n"
        "size = sum(x.nbytes for x in (m.data, m.indices, m.indptr)) if sp.issparse(m) else m.nbytes\n"
        "print(hwm() - before, size, float(m.sum(dtype=np.float64)))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    grew, size, total = r.stdout.split()
    np.testing.assert_allclose(float(total), want, rtol=1e-9)
    assert int(grew) < 1.4 * int(size), \
        f"peak grew {int(grew) / 2**20:.0f} MiB for a {int(size) / 2**20:.0f} MiB result"


def test_one_column_over_many_blocks_holds_only_its_values(tmp_path):
    """A gene read over all cells (``obs_vector``, a plot's colour): each block's selection
    kept the room of the whole source block, so one column cost every stored value's bytes
    (188 MiB at 200k cells, linear in cells)."""
    from anndataoom.testing import gen_h5ad

    path = tmp_path / "x.h5ad"
    mem = gen_h5ad(path, 150_000, 1000, fmt="csr", density=0.3, obs_extra=False)
    want = mem.X[:, 7].toarray().ravel()
    stored = mem.X.data.nbytes + mem.X.indices.nbytes
    del mem
    code = (
        "import anndataoom as oom, numpy as np\n"
        "def hwm():\n"
        "    with open('/proc/self/status') as f:\n"
        "        return next(int(l.split()[1]) * 1024 for l in f if l.startswith('VmHWM'))\n"
        f"a = oom.read({str(path)!r})\n"
        "assert len(a.X.blocks()) >= 4\n"
        "a.X[:10].to_memory()\n"
        "before = hwm()\n"
        "v = a.obs_vector(a.var_names[7])\n"
        f"np.save({str(tmp_path / 'v.npy')!r}, v)\n"
        "print(hwm() - before)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), want)
    grew = int(r.stdout)
    # what remains is the reads in flight (~60 MiB), not a share of every block
    assert grew < 0.3 * stored, f"peak grew {grew / 2**20:.0f} MiB; stored {stored / 2**20:.0f} MiB"
