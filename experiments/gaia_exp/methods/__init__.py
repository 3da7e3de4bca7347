"""Optimisation methods. Each module has one documented entry point, ``run(run, params)``,
a ``PARAMS`` tuple of :class:`gaia_exp.params.Param` and a one-line ``__doc__`` summary.

``run`` drives a :class:`gaia_exp.run.Run` (evaluate / end_generation, see there) until the
budget is spent or the run is stopped; the best-ever parameters are tracked by the Run.
"""

from __future__ import annotations

from importlib import import_module

NAMES = ("cma_es", "openai_es", "random_search", "island_model", "curriculum_cma_es", "neuromod_cma_es",
         "neuromod_island", "hybrid_cma_ff", "indirect_encoding", "ppo")


def get(name: str):
    """The method module called ``name`` (KeyError if unknown)."""
    if name not in NAMES:
        raise KeyError(name)
    return import_module(f"{__name__}.{name}")


def summary(name: str) -> str:
    return (get(name).__doc__ or "").strip().splitlines()[0]
