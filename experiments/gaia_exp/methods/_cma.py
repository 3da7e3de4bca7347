"""Shared pycma set-up and the restarting CMA-ES loop (cma_es, neuromod_cma_es, the islands, ...)."""

from __future__ import annotations

import sys
import warnings

import numpy as np

with warnings.catch_warnings():
    # pycma warns on import when matplotlib is missing; plotting is not used here.
    warnings.simplefilter("ignore")
    import cma  # noqa: E402


def make_es(x0, sigma0: float, seed: int, pop_size: int | None):
    """A quiet pycma CMAEvolutionStrategy: no console output, no outcmaes/ files, no fevals cap
    (GAIA's Run owns the budget)."""
    opts = {
        "seed": seed,
        "verbose": -9,
        "verb_disp": 0,
        "verb_log": 0,
        "verb_time": False,
        "maxfevals": float("inf"),
    }
    if pop_size is not None:
        opts["popsize"] = int(pop_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cma.CMAEvolutionStrategy(list(map(float, x0)), float(sigma0), opts)


def stop_reasons(es) -> dict:
    """pycma's termination conditions that fired (empty while it should go on)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(es.stop())


def run_cma(run, params: dict, name: str, after_tell=None, extra=None) -> None:
    """CMA-ES on the Run until its budget is spent, restarted from the best-ever point (with a
    new derived seed) whenever pycma's own termination criteria fire. ``after_tell(es, X, f)``,
    if given, runs after each generation's update (hybrid methods hook in there); ``extra()``
    gives the Gen line's extra fields."""
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
        if after_tell is not None:
            after_tell(es, X, f)
        if run.end_generation(es.sigma, extra() if extra is not None else None):
            return
        reasons = stop_reasons(es)
        if reasons:
            restart += 1
            print(f"{name}: pycma stopped ({', '.join(reasons)}); restart {restart} from the best-ever point",
                  file=sys.stderr, flush=True)
            es = make_es(run.best_params, params["sigma0"], method_seed(run.seed, restart), params["pop_size"])
