"""CMA-ES (pycma), restarted from the best-ever point when pycma's own termination criteria fire.

Params: ``pop_size`` (null: pycma's default 4 + 3 ln n), ``sigma0`` (initial step size).
σ in the Gen line is pycma's global step size.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from ..params import Param
from ._cma import make_es, stop_reasons

PARAMS = (
    Param("pop_size", None, "opt_int", "population size (null: pycma's default 4 + 3 ln(n))", 2),
    Param("sigma0", 0.5, "float", "initial step size", 1e-12),
)


def run(run, params: dict) -> None:
    """Minimise -fitness with pycma's CMAEvolutionStrategy until the Run's budget is spent."""
    from ..run import method_seed

    restart = 0
    es = make_es(run.x0, params["sigma0"], method_seed(run.seed, restart), params["pop_size"])
    while run.can_afford(es.popsize):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            X = np.array(es.ask())
        f = run.evaluate(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            es.tell(list(X), list(-f))
        if run.end_generation(es.sigma):
            return
        reasons = stop_reasons(es)
        if reasons:
            restart += 1
            print(f"cma_es: pycma stopped ({', '.join(reasons)}); restart {restart} from the best-ever point",
                  file=sys.stderr, flush=True)
            es = make_es(run.best_params, params["sigma0"], method_seed(run.seed, restart), params["pop_size"])
