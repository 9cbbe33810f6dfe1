"""Core objects: the lazy matrix family, layers, raw and ``AnnDataOOM``."""

from anndataoom._core._anndataoom import AnnDataOOM
from anndataoom._core._backed_array import (
    BackedArray,
    ScaledBackedArray,
    TransformedBackedArray,
)
from anndataoom._core._guard import InMemoryRequiredError, is_oom
from anndataoom._core._layers import BackedLayers
from anndataoom._core._oom_guard import OOMMaterializeWarning, oom_guard
from anndataoom._core._raw import BackedRaw

__all__ = [
    "AnnDataOOM",
    "BackedArray",
    "BackedLayers",
    "BackedRaw",
    "InMemoryRequiredError",
    "OOMMaterializeWarning",
    "ScaledBackedArray",
    "TransformedBackedArray",
    "is_oom",
    "oom_guard",
]
