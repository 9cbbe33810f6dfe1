"""Fixtures of the reliability suite (see ``_sandbox.py``)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _sandbox import Sandbox  # noqa: E402


@pytest.fixture(scope="session")
def sandbox():
    """A worker process running cases; crashes and hangs fail the test only."""
    box = Sandbox()
    yield box
    box.close()
