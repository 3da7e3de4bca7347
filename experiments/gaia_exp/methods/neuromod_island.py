"""Islands of neuromodulated plastic agents: ``island_model`` over ``neuromod_cma_es``'s policy.

Several CMA-ES populations (one per island) each evolve NeuromodPolicy genomes (initial weights,
Hebbian plasticity coefficients and the neuromodulatory output's weights; see
``neuromod_cma_es`` and gaia_exp/policy.py for the rule and its sources), evaluated together in
one batch per generation, with each island's best-ever genome migrating every
``migration_interval`` generations over a ``ring`` or ``full`` topology (see ``_islands.py``).
On an analytic objective there is no network: it is ``island_model``.
σ in the Gen line is the mean step size over the islands.
"""

from __future__ import annotations

from ._islands import PARAMS, run_islands

POLICY = "neuromod"

__all__ = ["PARAMS", "POLICY", "run"]


def run(run, params: dict) -> None:
    """Evolve the islands of plastic agents until the Run's budget is spent."""
    run_islands(run, params, "neuromod_island")
