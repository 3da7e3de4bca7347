"""CMA-ES with a curriculum: the task gets harder as the population improves.

The run starts on an easier version of the task (difficulty ``start_difficulty``, 0 = easiest)
and raises the difficulty by ``difficulty_step`` whenever the best candidate of a generation
reaches the fitness that masters the current level (the env's threshold, scaled with the episode
length where the returns grow with it), until difficulty 1: exactly the task the job names, where
the rest of the run is plain ``cma_es``. What difficulty means for each environment is defined
in gaia_exp/curriculum.py (pole length for CartPole, gravity and wind for LunarLander, episode
length and obstacles for BipedalWalker, the cosine amplitude for rastrigin, ...); other envs are
refused (exit 2).

Best-ever, validation and the final test are always about difficulty 1: while the difficulty is
below 1 (and ``track_target`` is true) the best candidate of each generation is also evaluated on
the target task (one more eval per generation, counted, not part of the Gen line's Best/Mean), so
Ever follows the real task from the start; Best and Mean are the population's fitness at the
current difficulty, printed as ``Difficulty: 0.50`` on each Gen line (and a curve.csv column).
One CMA-ES (pycma) runs throughout, restarted from the best-ever point when its termination
criteria fire.

Sources: curriculum learning (Bengio, Louradour, Collobert & Weston, "Curriculum learning",
ICML 2009): train on easy examples first and raise the difficulty; in evolution, incremental
evolution (Gomez & Miikkulainen, "Incremental evolution of complex general behavior", Adaptive
Behavior 5, 1997) raises task difficulty as the population succeeds; for rastrigin the schedule
is a continuation (graduated optimisation) method (Mobahi & Fisher, "On the link between Gaussian
homotopy continuation and convex envelopes", EMMCVPR 2015). CMA-ES: Hansen & Ostermeier 2001.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from .. import curriculum
from ..envs import EnvError
from ..params import Param
from ._cma import make_es, stop_reasons

EXTRA_METRICS = ("difficulty",)

PARAMS = (
    Param("pop_size", None, "opt_int", "population size (null: pycma's default 4 + 3 ln(n))", 2),
    Param("sigma0", 0.5, "float", "initial step size", 1e-12),
    Param("start_difficulty", 0.0, "float", "difficulty of the first generation (0 = easiest, 1 = the task itself)", 0),
    Param("difficulty_step", 0.25, "float", "how much the difficulty rises when a level is mastered", 1e-6),
    Param("track_target", True, "bool",
          "also evaluate each generation's best on the target task (1 eval per generation while difficulty < 1), "
          "so best-ever and the early stop follow the real task"),
)


def check(info, params) -> None:
    """Refuse environments without a difficulty definition (exit 2 with the list)."""
    if info.name not in curriculum.supported():
        raise EnvError(f"curriculum_cma_es defines difficulty for {', '.join(curriculum.supported())}; "
                       f"not for {info.name} (see gaia_exp/curriculum.py)")
    if params["start_difficulty"] > 1:
        raise EnvError("start_difficulty must be between 0 and 1")


def _levels(run, env_name: str | None):
    """(advance_at(d), whether the env has easier levels)."""
    cur = curriculum.lookup(env_name) if env_name else None
    if cur is not None:
        return (lambda d: cur.advance_at(d, run.threshold)), True
    return (lambda d: run.threshold), env_name == "rastrigin"


def run(run, params: dict) -> None:
    """CMA-ES on a rising difficulty until the Run's budget is spent."""
    from ..run import method_seed

    env_name = getattr(run.evaluator, "cfg", None)
    env_name = env_name.env_id if env_name is not None else getattr(run.evaluator, "name", None)
    advance_at, has_levels = _levels(run, env_name)
    d = float(params["start_difficulty"]) if has_levels and run.threshold is not None else 1.0
    step = params["difficulty_step"]
    restart = 0
    es = make_es(run.x0, params["sigma0"], method_seed(run.seed, restart), params["pop_size"])
    while run.can_afford(es.popsize + (1 if d < 1 and params["track_target"] else 0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            X = np.array(es.ask())
        level = d
        f = run.evaluate(X, difficulty=level)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            es.tell(list(X), list(-f))
        if level < 1:
            best = int(np.argmax(f))
            if params["track_target"]:
                run.evaluate(X[best][None, :], stats=False)  # on the task itself: best-ever follows it
            if f[best] >= advance_at(level):
                d = min(1.0, level + step)
                print(f"curriculum_cma_es: generation {run.generation}: best {f[best]:.4g} >= {advance_at(level):.4g} "
                      f"at difficulty {level:.2f}; difficulty -> {d:.2f}", file=sys.stderr, flush=True)
        if run.end_generation(es.sigma, {"difficulty": level}):
            return
        reasons = stop_reasons(es)
        if reasons:
            restart += 1
            print(f"curriculum_cma_es: pycma stopped ({', '.join(reasons)}); restart {restart} from the best-ever "
                  f"point", file=sys.stderr, flush=True)
            es = make_es(run.best_params, params["sigma0"], method_seed(run.seed, restart), params["pop_size"])
