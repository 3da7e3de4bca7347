"""Random search baseline: Gaussian samples around the best point found so far, fixed scale.

Each generation draws ``pop_size`` points best_ever + sigma·N(0, I) (the first around the start
point) and keeps the best-ever one as the next centre. No adaptation, no gradient: the yardstick
the other methods must beat. σ in the Gen line is the fixed ``sigma``.
"""

from __future__ import annotations

from ..params import Param

PARAMS = (
    Param("pop_size", 50, "int", "samples per generation", 1),
    Param("sigma", 0.5, "float", "standard deviation of the samples around the centre", 1e-12),
)


def run(run, params: dict) -> None:
    """Sample around the best-ever point until the Run's budget is spent."""
    from ..run import method_rng

    pop, sigma = int(params["pop_size"]), params["sigma"]
    rng = method_rng(run.seed)
    while run.can_afford(pop):
        centre = run.best_params  # the start point until something has been evaluated
        X = centre + sigma * rng.standard_normal((pop, run.dim))
        run.evaluate(X)
        if run.end_generation(sigma):
            return
