"""scanpy's ``random_state`` forms → the seeds of the Rust kernels."""

import numpy as np
import pytest

from anndataoom._random import seed_of


def test_ints_and_none():
    assert seed_of(None) == 0
    assert seed_of(7) == 7
    assert seed_of(np.int64(7)) == 7
    assert 0 <= seed_of(-1) < 2**63


def test_numpy_states_draw_a_repeatable_seed():
    assert seed_of(np.random.RandomState(3)) == seed_of(np.random.RandomState(3))
    assert seed_of(np.random.default_rng(3)) == seed_of(np.random.default_rng(3))
    rs = np.random.RandomState(3)
    assert seed_of(rs) != seed_of(rs)  # the state advances, as scanpy's functions advance it


@pytest.mark.parametrize("bad", [True, "0", 1.5])
def test_other_types_raise(bad):
    with pytest.raises(TypeError, match="random_state"):
        seed_of(bad)
