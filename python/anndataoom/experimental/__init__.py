"""scanpy's experimental functions (``scanpy.experimental``), out of core.

:mod:`anndataoom.experimental.pp` has the analytic Pearson residual
workflow of Lause et al. (2021) with scanpy's names, arguments and result
locations.
"""

from anndataoom.experimental import pp

__all__ = ["pp"]
