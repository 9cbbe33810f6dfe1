"""How the CLI ends on SIGTERM, SIGHUP and a closed output pipe: cleanly, with nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from anndataoom.io._write import TMP_PREFIX
from anndataoom.testing import gen_h5ad

CLI = [sys.executable, "-m", "anndataoom.cli"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A file whose gzip conversion takes long enough to be stopped halfway."""
    path = tmp_path_factory.mktemp("src") / "src.h5ad"
    gen_h5ad(path, 60_000, 400, density=0.1, seed=7)
    return path


def _temp_files(directory) -> list[str]:
    return [n for n in os.listdir(directory) if n.startswith(TMP_PREFIX)]


def _convert_until_writing(source, out_dir, ignore=()) -> subprocess.Popen:
    """Start ``convert``; return once its temp file exists (it is writing)."""
    def preexec():
        # as a shell starts it, whatever this run inherited (`nohup` ignores SIGHUP)
        for s in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN if s in ignore else signal.SIG_DFL)

    env = dict(os.environ, ANNDATAOOM_PROGRESS="0")
    p = subprocess.Popen([*CLI, "convert", str(source), str(out_dir / "out.h5ad"),
                          "--compression", "gzip"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         preexec_fn=preexec)
    end = time.time() + 120
    while not _temp_files(out_dir):
        assert p.poll() is None, p.communicate()
        assert time.time() < end, "convert never started writing"
        time.sleep(0.005)
    return p


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_stop_signal_mid_write_cleans_up_like_ctrl_c(source, tmp_path, sig):
    """Killed by default, the process would leave its temp file; now it unwinds as on Ctrl-C."""
    p = _convert_until_writing(source, tmp_path)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig, err
    assert f"anndataoom: interrupted ({signal.Signals(sig).name})" in err
    assert "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_ignored_hangup_stays_ignored(source, tmp_path):
    """Under ``nohup`` (SIGHUP ignored) a logout must not stop the job."""
    p = _convert_until_writing(source, tmp_path, ignore=[signal.SIGHUP])
    p.send_signal(signal.SIGHUP)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert os.listdir(tmp_path) == ["out.h5ad"]


def test_closed_output_pipe_ends_quietly(tmp_path):
    """``anndataoom info … | head -1``: the exit status of SIGPIPE, no traceback, no second error."""
    path = tmp_path / "a.h5ad"
    gen_h5ad(path, 50, 30)
    p = subprocess.Popen([*CLI, "info", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # the reader is gone before anything is written
    with p.stderr:
        err = p.stderr.read().decode()
    p.wait(60)
    assert p.returncode == 128 + signal.SIGPIPE, err
    assert err == ""
