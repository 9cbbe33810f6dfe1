"""Resource hygiene: file handles and spill files are released on close(),
context exit, exceptions, KeyboardInterrupt and garbage collection.
"""

from __future__ import annotations

import os

import pytest
from _sandbox import Sandbox

from anndataoom.testing import gen_h5ad


@pytest.fixture(scope="module")
def spill_box(tmp_path_factory):
    spill = tmp_path_factory.mktemp("spill")
    box = Sandbox(env={"OOM_TMPDIR": str(spill)})
    yield box, str(spill)
    box.close()


@pytest.mark.parametrize("mode", ["close", "context", "exception", "keyboardinterrupt", "gc"])
@pytest.mark.parametrize("fmt", ["csr", "csc", "dense"])
def test_handles_and_spill_files_released(spill_box, tmp_path, fmt, mode):
    box, spill = spill_box
    p = tmp_path / f"h_{fmt}.h5ad"
    gen_h5ad(p, 500, 40, fmt=fmt, density=0.2, compression="gzip", chunks=128)
    during, after = box.call("_cases.fd_lifecycle", str(p), spill, mode)
    assert during["file"] >= 1
    if fmt == "csc":
        assert during["spill"] >= 1  # the transposed copy lives in unnamed temp files
    assert after == {"file": 0, "spill": 0}, (during, after)
    assert os.listdir(spill) == []  # spill files never have a name
