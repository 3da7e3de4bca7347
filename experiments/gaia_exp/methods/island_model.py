"""Island model: several CMA-ES populations (pycma) with periodic migration of the best.

Every generation each island asks pycma for its population; all islands are evaluated in one
batch (one generation = n_islands x pop_size evals). Every ``migration_interval`` generations
each island's best-ever point migrates, injected with pycma's ``inject``: to the next island
(``topology`` ring, the default) or to every other island (``full``, fully connected). An island
whose pycma termination criteria fire restarts from the global best. σ in the Gen line is the
mean step size over the islands. The machinery and its references are in ``_islands.py``.
"""

from __future__ import annotations

from ._islands import PARAMS, run_islands

__all__ = ["PARAMS", "run"]


def run(run, params: dict) -> None:
    """Evolve the islands side by side until the Run's budget is spent."""
    run_islands(run, params, "island_model")
