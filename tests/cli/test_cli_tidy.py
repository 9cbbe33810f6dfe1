"""CLI output and options: no third-party warnings, options honoured or refused, honest --help."""

from __future__ import annotations

import os
import subprocess
import sys

import anndata as ad
import numpy as np
import pytest

import anndataoom as oom
from anndataoom.cli.__main__ import main


def _cli(*argv, timeout=300) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter with Python's default warning filters (what users see)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["ANNDATAOOM_PROGRESS"] = "0"
    return subprocess.run([sys.executable, "-m", "anndataoom.cli", *map(str, argv)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def _help_lines(cmd: str) -> dict[str, str]:
    """Option → its help text (wrapped lines joined)."""
    r = _cli(cmd, "--help")
    assert r.returncode == 0, r.stderr
    out, cur = {}, None
    for line in r.stdout.splitlines():
        s = line.strip()
        if s.startswith("-"):
            cur = s.split()[0].rstrip(",")
            out[cur] = s
        elif cur and s:
            out[cur] += " " + s
    return out


def test_help_states_defaults_correctly():
    h = _help_lines("run")
    assert "default: True" not in h["--no-plots"] and "write them" in h["--no-plots"]
    assert "default" not in h["-o"]  # required: no default to state
    assert "(default: 0)" in h["--seed"]
    assert "(default: 200)" in h["--min-genes"]
    c = _help_lines("convert")
    assert "(default: none)" in c["--compression"] and "h5ad output only" in c["--compression"]
    assert "no sharding" in c["--shards"]


def test_convert_refuses_options_that_do_not_apply(make_h5ad, tmp_path, capsys):
    path, _ = make_h5ad(n_obs=30, n_vars=20)
    cases = [
        (["--compression", "gzip"], "out.zarr", "--compression applies to .h5ad"),
        (["--zarr-format", "3"], "out.h5ad", "apply to .zarr output"),
        (["--shards", "4"], "out.h5ad", "apply to .zarr output"),
        (["--zarr-format", "2", "--shards", "4"], "out.zarr", "--shards needs --zarr-format 3"),
    ]
    for opts, name, msg in cases:
        assert main(["convert", str(path), str(tmp_path / name), *opts]) == 1
        assert msg in capsys.readouterr().err
        assert not (tmp_path / name).exists()


def test_convert_sharded_zarr_prints_no_warnings(make_h5ad, tmp_path):
    path, mem = make_h5ad(n_obs=200, n_vars=50, density=0.2)
    out = tmp_path / "o.zarr"
    r = _cli("convert", path, out, "--zarr-format", "3", "--shards", "8")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    back = ad.read_zarr(out)
    np.testing.assert_array_equal(back.X.toarray(), mem.X.toarray())


@pytest.mark.parametrize("name", ["x.h5ad"])
def test_run_prints_no_warnings(make_h5ad, tmp_path, name):
    path, _ = make_h5ad(n_obs=300, n_vars=300, density=0.2, seed=7)
    out = tmp_path / name
    r = _cli("run", path, "-o", out, "--min-genes", "5", "--min-cells", "2", "--max-pct-mt",
             "60", "--n-top-genes", "80", "--n-comps", "8", "--n-neighbors", "8")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no matplotlib/zarr/anndata warnings
    assert (tmp_path / "x_plots" / "marker_genes.png").exists()


def test_read_rejects_unknown_keywords_as_anndata(make_h5ad):
    path, _ = make_h5ad(n_obs=20, n_vars=10)
    with pytest.raises(TypeError):
        ad.read_h5ad(path, bogus=1)  # the behaviour we match
    with pytest.raises(TypeError, match="bogus"):
        oom.read(path, bogus=1)
    for read in (oom.read, oom.read_h5ad):  # both take anndata.read_h5ad's keywords
        assert read(path, backed="r", chunk_size=100).shape == (20, 10)
        with pytest.raises(NotImplementedError, match="as_sparse"):
            read(path, as_sparse=["X"])
    with pytest.raises(TypeError, match="bogus"):
        oom.read_h5ad(path, bogus=1)


def test_run_reports_peak_memory_in_mib_as_the_kernel_counts_it():
    """The peak RSS `anndataoom run` prints is the kernel's high-water mark (VmHWM), in MiB."""
    from pathlib import Path

    from anndataoom.cli.run import _peak_mib

    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("needs Linux's /proc/self/status")
    _ = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB touched: the peak is at least that
    line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM"))
    assert abs(_peak_mib() - int(line.split()[1]) / 1024) < 1.0
    assert _peak_mib() >= 64
