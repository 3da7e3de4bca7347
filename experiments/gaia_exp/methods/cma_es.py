"""CMA-ES (pycma), restarted from the best-ever point when pycma's own termination criteria fire.

Params: ``pop_size`` (null: pycma's default 4 + 3 ln n), ``sigma0`` (initial step size).
σ in the Gen line is pycma's global step size.
"""

from __future__ import annotations

from ..params import Param
from ._cma import run_cma

PARAMS = (
    Param("pop_size", None, "opt_int", "population size (null: pycma's default 4 + 3 ln(n))", 2),
    Param("sigma0", 0.5, "float", "initial step size", 1e-12),
)


def run(run, params: dict) -> None:
    """Minimise -fitness with pycma's CMAEvolutionStrategy until the Run's budget is spent."""
    run_cma(run, params, "cma_es")
