"""Seeds for the Rust kernels from scanpy's ``random_state`` argument."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["seed_of"]


def seed_of(random_state) -> int:
    """Return a 63-bit seed for scanpy's ``random_state``.

    An int (numpy integers too) is kept, modulo 2**63; ``None`` gives 0; a
    numpy ``RandomState`` or ``Generator`` draws one seed, advancing it as
    scanpy's own functions advance a state they are given.
    """
    if random_state is None:
        return 0
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state) & (2**63 - 1)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    raise TypeError(
        "random_state must be an int, None, a numpy RandomState or Generator, "
        f"got {type(random_state).__name__}"
    )
