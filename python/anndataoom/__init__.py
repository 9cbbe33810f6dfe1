"""Out-of-memory AnnData with a Rust core and a scanpy-compatible API."""

from anndataoom import _oom

__version__ = "0.2.0"
