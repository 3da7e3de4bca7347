"""Shared pycma set-up for cma_es and island_model."""

from __future__ import annotations

import warnings

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
