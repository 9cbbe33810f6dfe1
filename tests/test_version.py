"""``anndataoom.__version__`` is the version the package was built with."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import anndataoom

CARGO_TOML = Path(__file__).resolve().parents[1] / "Cargo.toml"


def test_version_is_the_workspace_crate_version():
    section = CARGO_TOML.read_text().split("[workspace.package]", 1)[1]
    workspace = re.search(r'^version\s*=\s*"([^"]+)"', section, re.M).group(1)
    assert anndataoom.__version__ == workspace
    assert anndataoom.__version__ == version("anndataoom")
