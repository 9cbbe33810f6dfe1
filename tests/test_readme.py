"""The README's examples marked ``<!-- readme-test -->`` run as written (in a fresh interpreter)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"<!-- readme-test -->\s*```python\n(.*?)```", README.read_text(), re.S)


def test_examples_are_found():
    """Marker genes, Zarr, concat_on_disk, dask and Cell Ranger sections each carry an example."""
    assert len(BLOCKS) == 5


@pytest.mark.parametrize("code", BLOCKS, ids=[f"example{i}" for i in range(len(BLOCKS))])
def test_example_runs(code, tmp_path, pbmc3k_path):
    """Run one example (PBMC 3k comes from the cache the fixture fills)."""
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
