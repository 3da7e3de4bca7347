"""The island model shared by ``island_model`` and ``neuromod_island``: several pycma CMA-ES
populations evolving side by side, with periodic migration of each island's best-ever point.

Every generation each island asks pycma for its population; all islands are evaluated in one
batch (one generation = n_islands x pop_size evals, spread over the evaluation pool). Every
``migration_interval`` generations the islands exchange migrants, injected with pycma's
``inject`` (the migrant replaces one sample of the receiver's next population, and CMA-ES's own
selection decides whether it shapes the distribution):

- ``ring``: island i receives the best-ever point of island i - 1;
- ``full`` (fully connected): island i receives the best-ever points of every other island.

An island whose pycma termination criteria fire restarts from the global best. The model follows
the classic island / migration model of parallel evolutionary algorithms (e.g. Whitley, Rana &
Heckendorn, "The island model genetic algorithm: on separability, population size and
convergence", 1999; Alba & Tomassini, "Parallelism and evolutionary algorithms", IEEE TEC 2002).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from ..params import Param
from ._cma import make_es, stop_reasons

PARAMS = (
    Param("n_islands", 4, "int", "number of CMA-ES populations", 1),
    Param("pop_size", None, "opt_int", "population size per island (null: pycma's default 4 + 3 ln(n))", 2),
    Param("sigma0", 0.5, "float", "initial step size of every island", 1e-12),
    Param("migration_interval", 10, "int", "generations between migrations", 1),
    Param("topology", "ring", "choice:ring|full",
          "ring: island i receives island i-1's best; full: every island receives every other island's best"),
)


def sources(i: int, k: int, topology: str) -> list[int]:
    """The islands whose best-ever point island i receives at a migration."""
    if k < 2:
        return []
    if topology == "ring":
        return [(i - 1) % k]
    return [j for j in range(k) if j != i]


def run_islands(run, params: dict, name: str) -> None:
    """Evolve the islands side by side until the Run's budget is spent."""
    from ..run import method_seed

    k, interval = params["n_islands"], params["migration_interval"]
    topology = params.get("topology", "ring")  # the default when a caller passes no topology
    seeds_used = 0

    def new_island(x0):
        nonlocal seeds_used
        seeds_used += 1
        return make_es(x0, params["sigma0"], method_seed(run.seed, seeds_used), params["pop_size"])

    islands = [new_island(run.x0) for _ in range(k)]
    best_x = [None] * k
    best_f = [-np.inf] * k
    gen = 0
    while run.can_afford(sum(es.popsize for es in islands)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            asks = [np.array(es.ask()) for es in islands]
        f_all = run.evaluate(np.concatenate(asks))
        pos = 0
        for i, (es, X) in enumerate(zip(islands, asks)):
            f = f_all[pos:pos + len(X)]
            pos += len(X)
            j = int(np.argmax(f))
            if f[j] > best_f[i]:
                best_f[i], best_x[i] = float(f[j]), X[j].copy()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                es.tell(list(X), list(-f))
        gen += 1
        if run.end_generation(float(np.mean([es.sigma for es in islands]))):
            return
        if k > 1 and gen % interval == 0:
            migrants = [[best_x[j] for j in sources(i, k, topology) if best_x[j] is not None] for i in range(k)]
            for i in range(k):
                if migrants[i]:
                    islands[i].inject(migrants[i], force=True)
        for i, es in enumerate(islands):
            reasons = stop_reasons(es)
            if reasons:
                print(f"{name}: island {i} stopped ({', '.join(reasons)}); restarting from the global best",
                      file=sys.stderr, flush=True)
                islands[i] = new_island(run.best_params)
                best_f[i], best_x[i] = -np.inf, None
