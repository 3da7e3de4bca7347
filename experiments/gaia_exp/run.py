"""The :class:`Run` that every method drives.

A method's loop is::

    while run.can_afford(popsize):
        fitness = run.evaluate(X)          # (n,) higher is better; counts n evals
        ... update the search distribution ...
        if run.end_generation(sigma):      # prints the Gen line; True means stop
            break

Also there for methods that need them: ``evaluate(X, difficulty=d)`` (an easier task, see
gaia_exp.curriculum; only difficulty 1 counts for best-ever), ``evaluate(X, stats=False)`` (a
check outside the population: counted, but not in the Gen line's Best/Mean), ``rollout(theta)``
(one eval that also returns the observations it saw), ``record(X, f, evals)`` (fitness measured
by the method itself, e.g. PPO's training episodes), ``layer_sizes`` (the policy's layers; None
for analytic objectives) and ``end_generation(sigma, extra={...})`` for extra Gen-line fields
declared in ``extra_metrics``.

``Run`` does the bookkeeping the methods share: the evaluation budget, episode seeds per
generation, best-of-generation and best-ever (with its parameters), the Gen line and curve.csv
row, progress lines, and the early stop once the env's threshold is reached.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from typing import Any, Callable, TextIO

import numpy as np

from .lines import format_gen_line, gaia_line

# Seed streams: SeedSequence([seed, stream, index]) keeps every use of the run seed independent.
STREAM_TRAIN, STREAM_VALIDATE, STREAM_FINAL, STREAM_X0, STREAM_METHOD = 0, 1, 2, 3, 4


def derive_seeds(seed: int, stream: int, index: int, count: int) -> list[int]:
    """``count`` 32-bit seeds for (run seed, stream, index): reproducible and well separated."""
    ss = np.random.SeedSequence([int(seed), int(stream), int(index)])
    return [int(s) for s in ss.generate_state(count, dtype=np.uint32)]


def method_rng(seed: int, index: int = 0) -> np.random.Generator:
    """A numpy Generator for a method's own sampling (index tells sub-streams apart)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), STREAM_METHOD, int(index)]))


def method_seed(seed: int, index: int = 0) -> int:
    """A non-zero 31-bit seed for libraries that take an int (pycma treats 0 as 'time')."""
    return derive_seeds(seed, STREAM_METHOD, 1000 + index, 1)[0] % (2**31 - 2) + 1


class Run:
    def __init__(self, *, evaluator, x0: np.ndarray, seed: int, max_evals: int, eval_episodes: int,
                 threshold: float | None, stop_when_solved: bool, validate: Callable[[np.ndarray, int], np.ndarray] | None,
                 precise: bool, block_size: int = 20, out: TextIO | None = None, curve_file: TextIO | None = None,
                 t0: float | None = None, extra_metrics: tuple[str, ...] = (), layer_sizes: list[int] | None = None):
        self.evaluator = evaluator
        self.x0 = np.asarray(x0, dtype=np.float64)
        self.dim = self.x0.size
        self.seed = seed
        self.max_evals = max_evals
        self.eval_episodes = eval_episodes
        self.threshold = threshold
        self.stop_when_solved = stop_when_solved and threshold is not None
        self.validate = validate  # (params, generation) -> episode returns, or None if not needed
        self.block_size = block_size  # validation blocks: the size of the final evaluation
        self.precise = precise
        self.extra_metrics = tuple(extra_metrics)  # extra Gen-line fields, e.g. ("difficulty",)
        self.layer_sizes = layer_sizes
        self.out = out or sys.stdout
        self.t0 = time.perf_counter() if t0 is None else t0
        self.generation = 1
        self.evals = 0
        self.best_ever = -math.inf
        self.best_params = self.x0.copy()
        self.curve: list[dict[str, Any]] = []
        self.stop_reason: str | None = None
        self.validated: dict[str, Any] | None = None
        self.validation_episodes = 0
        self._gen_fitness: list[np.ndarray] = []
        self._ever_improved = False
        self._last_progress = 0.0
        self._curve_writer = None
        if curve_file is not None:
            self._curve_writer = csv.writer(curve_file)
            self._curve_writer.writerow(["generation", "evals", "best", "best_ever", "mean", "sigma", "elapsed",
                                         *self.extra_metrics])
            self._curve_file = curve_file

    # -- what methods use -------------------------------------------------------------------
    def can_afford(self, n: int) -> bool:
        """True if n more evaluations fit in the budget and the run has not been stopped."""
        return self.stop_reason is None and self.evals + n <= self.max_evals

    def evaluate(self, X, difficulty: float = 1.0, stats: bool = True) -> np.ndarray:
        """Fitness (higher is better) of each row of X, on this generation's episode seeds.

        ``difficulty`` < 1: an easier version of the task (gaia_exp.curriculum); such fitness is
        in the Gen line but never a best-ever, which is always about the task the job names.
        ``stats=False``: counted in the budget, not in this generation's Best/Mean (a check of
        one candidate beside the population)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        seeds = self.train_seeds()
        if difficulty < 1.0:
            f = self.evaluator.returns(X, seeds, difficulty).mean(axis=1)
        else:
            f = self.evaluator.returns(X, seeds).mean(axis=1)
        self.evals += X.shape[0]
        if stats:
            self._gen_fitness.append(f)
        if difficulty >= 1.0:
            self._update_best(X, f)
        return f

    def train_seeds(self) -> list[int]:
        """This generation's episode seeds (the same for every candidate of a generation)."""
        return derive_seeds(self.seed, STREAM_TRAIN, self.generation, self.eval_episodes)

    def rollout(self, theta, max_states: int = 2000):
        """One eval of ``theta`` (this generation's seeds, in this process) that also returns up
        to ``max_states`` observations it saw: (fitness, states). Counted in the budget and for
        best-ever, not in the Gen line's Best/Mean. Gym envs only."""
        theta = np.asarray(theta, dtype=np.float64)
        rets, states = self.evaluator.local.visited_states(theta, self.train_seeds(), max_states=max_states)
        f = np.array([float(np.mean(rets))])
        self.evals += 1
        self._update_best(theta[None, :], f)
        return float(f[0]), states

    def record(self, X, f, evals: int) -> None:
        """Fitness the method measured itself (``evals`` of budget): counted like ``evaluate``."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        f = np.asarray(f, dtype=np.float64).reshape(-1)
        self.evals += int(evals)
        self._gen_fitness.append(f)
        self._update_best(X, f)

    def _update_best(self, X, f) -> None:
        i = int(np.nanargmax(f)) if np.any(np.isfinite(f)) else 0
        # Ties go to the newer candidate: on capped returns (CartPole's 500) the first candidate to
        # reach the cap is rarely the most robust one, and later ones have survived more seeds.
        if f[i] >= self.best_ever:
            self.best_ever = float(f[i])
            self.best_params = X[i].copy()
            self._ever_improved = True
        return f

    def end_generation(self, sigma: float, extra: dict[str, float] | None = None) -> bool:
        """Print this generation's line and record it; return True when the run should stop.
        ``extra``: values of the run's ``extra_metrics`` (Gen-line fields and curve.csv columns)."""
        extra = extra or {}
        f = np.concatenate(self._gen_fitness) if self._gen_fitness else np.array([math.nan])
        finite = f[np.isfinite(f)]
        best = float(finite.max()) if finite.size else math.nan
        mean = float(finite.mean()) if finite.size else math.nan
        elapsed = time.perf_counter() - self.t0
        row = {"generation": self.generation, "evals": self.evals, "best": best, "best_ever": self.best_ever,
               "mean": mean, "sigma": float(sigma), "elapsed": round(elapsed, 3)}
        for name in self.extra_metrics:
            v = extra.get(name, math.nan)
            row[name] = int(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else float(v)
        self.curve.append(row)
        if self._curve_writer is not None:  # written before the line, so a printed gen is on disk
            self._curve_writer.writerow([row[k] for k in ("generation", "evals", "best", "best_ever", "mean", "sigma",
                                                           "elapsed", *self.extra_metrics)])
            self._curve_file.flush()
        self.emit(format_gen_line(self.generation, best, self.best_ever, mean, float(sigma), self.evals, elapsed,
                                  precise=self.precise,
                                  extra=[(name, row[name]) for name in self.extra_metrics]))
        progress = self.evals / self.max_evals if self.max_evals else 1.0
        if progress - self._last_progress >= 0.05:
            self._last_progress = progress
            self.emit(gaia_line({"progress": round(progress, 4)}))
        if self.stop_when_solved and self._ever_improved and self.best_ever >= self.threshold:
            self._check_solved()
        self._gen_fitness = []
        self._ever_improved = False
        self.generation += 1
        return self.stop_reason is not None

    def status(self, message: str) -> None:
        """A status message for GAIA (``@gaia {"status": ...}``)."""
        self.emit(gaia_line({"status": message}))

    def emit(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    # -- internals ----------------------------------------------------------------------------
    def _check_solved(self) -> None:
        if self.validate is None:  # deterministic objective: the training value is the truth
            self.stop_reason = "solved"
            self.status(f"solved at generation {self.generation}: best {self.best_ever:.6g}")
            return
        rets = np.asarray(self.validate(self.best_params, self.generation), dtype=np.float64)
        self.validation_episodes += len(rets)
        # The validation episodes are split into blocks the size of the final evaluation, and
        # every block's mean must reach the threshold: several independent replicas of the final
        # test must pass. A single mean over all of them would let a marginal policy through (the
        # check repeats whenever a new best-ever appears) and then fail the final test.
        size = max(1, min(self.block_size, len(rets)))
        blocks = rets[: len(rets) // size * size].reshape(-1, size).mean(axis=1)
        mean, worst = float(rets.mean()), float(blocks.min())
        if worst >= self.threshold:
            self.stop_reason = "solved"
            self.validated = {"generation": self.generation, "mean": mean, "worst_block_mean": worst,
                              "blocks": int(len(blocks)), "block_size": size, "episodes": int(len(rets))}
            # Not "solved" yet: the final test on fresh episodes decides (see verdict()).
            self.status(f"reached the threshold at generation {self.generation}: validation mean {mean:.1f} over "
                        f"{len(rets)} episodes, every block of {size} >= {self.threshold:g}; final test next")
        else:
            print(f"gen {self.generation}: best-ever {self.best_ever:.1f} reached the threshold; validation "
                  f"mean {mean:.1f}, worst block of {size} {worst:.1f}: going on", file=sys.stderr, flush=True)


def _g(x: float | None) -> str:
    return "nan" if x is None or not math.isfinite(x) else f"{x:.1f}"


def verdict(*, threshold: float | None, final_mean: float, episodes: int | None, best_ever: float,
            stopped_at_threshold: bool, validated: dict | None, generation: int | None, evals: int,
            deterministic: bool) -> dict[str, Any]:
    """The one story a run tells: ``solved`` (the final test's verdict, what GAIA counts),
    ``stop_reason`` (solved | not_confirmed | budget), ``threshold_reached_in_training`` and a
    ``verdict`` sentence, which is also the run's last status line.

    A gym run stops when a best-ever policy reaches the threshold and passes validation on fresh
    episodes; the final test on other fresh episodes may still fall short (a marginal policy:
    Acrobot at -109.2 against -100). Then the run reached the threshold in training but is not
    solved, and every output says so in the same words.
    """
    reached = threshold is not None and math.isfinite(best_ever) and best_ever >= threshold
    solved = threshold is not None and math.isfinite(final_mean) and final_mean >= threshold
    over = f" over {episodes} episodes" if episodes else ""
    if threshold is None:
        return {"solved": False, "stop_reason": "budget", "threshold_reached_in_training": False,
                "verdict": f"finished: budget spent ({evals:,} evals); final test mean {_g(final_mean)}{over} "
                           f"(this env has no threshold)"}
    if deterministic:  # analytic objective: the training value is the final value
        if stopped_at_threshold:
            text = (f"solved at generation {generation}: best {best_ever:.6g} >= {threshold:g} "
                    f"(deterministic objective)")
        elif solved:
            text = f"solved: best {best_ever:.6g} >= {threshold:g} after the whole budget ({evals:,} evals)"
        else:
            text = f"not solved: budget spent ({evals:,} evals); best {best_ever:.6g} < {threshold:g}"
        return {"solved": solved, "stop_reason": "solved" if stopped_at_threshold else "budget",
                "threshold_reached_in_training": reached, "verdict": text}
    if stopped_at_threshold and validated is not None:
        where = (f"reached the threshold in training at generation {validated['generation']} "
                 f"(validated on {validated['episodes']} episodes)")
        if solved:
            text = f"solved: {where} and confirmed in the final test: mean {_g(final_mean)} >= {threshold:g}{over}"
        else:
            text = (f"not solved: {where}, not confirmed in the final test: mean {_g(final_mean)} < "
                    f"{threshold:g}{over}")
        return {"solved": solved, "stop_reason": "solved" if solved else "not_confirmed",
                "threshold_reached_in_training": True, "verdict": text}
    if solved:
        text = (f"solved in the final test: mean {_g(final_mean)} >= {threshold:g}{over}, after the whole budget "
                f"({evals:,} evals; best training fitness {_g(best_ever)})")
    elif reached:
        text = (f"not solved: budget spent ({evals:,} evals); training reached the threshold (best {_g(best_ever)}) "
                f"but no policy passed validation; final test mean {_g(final_mean)} < {threshold:g}{over}")
    else:
        text = (f"not solved: budget spent ({evals:,} evals); best training fitness {_g(best_ever)} < {threshold:g}; "
                f"final test mean {_g(final_mean)}{over}")
    return {"solved": solved, "stop_reason": "budget", "threshold_reached_in_training": reached, "verdict": text}
