"""Task difficulty per environment, for ``curriculum_cma_es``.

Difficulty d runs from 0 (easiest) to 1, and **d = 1 is always exactly the task the job names**
(the env with its params): validation, the final test and best-ever are measured there, so a
curriculum run is judged like any other. Below 1 the env is made easier by changing attributes
of the env object before each reset (``apply``), its episode length (``max_steps``), and, where
the returns scale with the episode length, the fitness that counts as "this difficulty is
mastered" (``advance_at``).

| env | what d changes (d = 0 -> d = 1) |
| --- | --- |
| CartPole-v1 | pole half-length 2.0 -> 0.5 m (0.5 x 4^(1-d)): a longer pole falls more slowly |
| Acrobot-v1 | available torque +-2 -> +-1 (1 + (1-d)) |
| MountainCarContinuous-v0 | engine power 2x -> 1x |
| Pendulum-v1 | gravity 0.4 g -> g (g = the env's, 10 by default) |
| LunarLander-v3 | gravity 0.5 g -> g (-5 -> -10 by default); wind and turbulence power 0 -> the target's when its env_kwargs enable wind |
| BipedalWalker-v3 | episode length 400 -> 1600 steps (x (0.25 + 0.75 d)); the fitness to advance scales the same way |
| BipedalWalkerHardcore-v3 | the same episode length, and no obstacles (the plain walker) until d >= 0.5 |
| rastrigin | the cosine term's amplitude 0 -> 10 (d = 0 is the sphere): a continuation method |
| sphere | nothing (it has no easier version): d stays 1 |

Other environments have no definition; the method says so (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


def _length_factor(d: float) -> float:
    return 0.25 + 0.75 * d


@dataclass(frozen=True)
class Curriculum:
    description: str
    # (difficulty, the target env's values of the attributes it changes) -> attributes to set
    settings: Callable[[float, dict[str, Any]], dict[str, Any]]
    attributes: tuple[str, ...]  # the attributes ``settings`` reads from the target env
    length: bool = False  # True: the episode length is scaled by 0.25 + 0.75 d

    def max_steps(self, d: float, full: int) -> int:
        return max(1, int(round(full * _length_factor(d)))) if self.length else full

    def advance_at(self, d: float, threshold: float) -> float:
        """Fitness at difficulty d that counts as mastering it (the threshold, scaled with the
        episode length where returns grow with it)."""
        return threshold * _length_factor(d) if self.length and threshold > 0 else threshold


def _cartpole(d, base):
    length = base["length"] * 4.0 ** (1.0 - d)
    return {"length": length, "polemass_length": base["masspole"] * length}


def _acrobot(d, base):
    tau = 1.0 + (1.0 - d)
    return {"AVAIL_TORQUE": [-tau * abs(base["AVAIL_TORQUE"][0]), 0.0, tau * abs(base["AVAIL_TORQUE"][-1])]}


def _lunar(d, base):
    out = {"gravity": base["gravity"] * (0.5 + 0.5 * d)}
    if base["enable_wind"]:
        out["wind_power"] = base["wind_power"] * d
        out["turbulence_power"] = base["turbulence_power"] * d
    return out


CURRICULA: dict[str, Curriculum] = {
    "CartPole-v1": Curriculum("pole half-length 0.5 x 4^(1-d) (2.0 m at d=0; longer falls slower)",
                              _cartpole, ("length", "masspole")),
    "Acrobot-v1": Curriculum("torque x (2 - d)", _acrobot, ("AVAIL_TORQUE",)),
    "MountainCarContinuous-v0": Curriculum("engine power x (2 - d)", lambda d, b: {"power": b["power"] * (2.0 - d)},
                                           ("power",)),
    "Pendulum-v1": Curriculum("gravity x (0.4 + 0.6 d)", lambda d, b: {"g": b["g"] * (0.4 + 0.6 * d)}, ("g",)),
    "LunarLander-v3": Curriculum("gravity x (0.5 + 0.5 d); wind and turbulence x d when the target has wind",
                                 _lunar, ("gravity", "enable_wind", "wind_power", "turbulence_power")),
    "BipedalWalker-v3": Curriculum("episode length x (0.25 + 0.75 d)", lambda d, b: {}, (), length=True),
    "BipedalWalkerHardcore-v3": Curriculum("episode length x (0.25 + 0.75 d); obstacles from d >= 0.5",
                                           lambda d, b: {"hardcore": bool(b["hardcore"]) and d >= 0.5},
                                           ("hardcore",), length=True),
}

ANALYTIC_CURRICULA = {
    "rastrigin": "cosine amplitude 10 d (d=0: the sphere)",
    "sphere": "none: the sphere has no easier version, d stays 1",
}


def lookup(env_name: str) -> Curriculum | None:
    return CURRICULA.get(env_name)


def supported() -> list[str]:
    return [*CURRICULA, *ANALYTIC_CURRICULA]


class EnvDifficulty:
    """Sets one env id's difficulty on env objects; remembers the target's values (d = 1)."""

    def __init__(self, env_id: str, target_env):
        self.curriculum = lookup(env_id)
        self.base = {}
        if self.curriculum is not None:
            self.base = {a: _copy(getattr(target_env, a)) for a in self.curriculum.attributes}

    def apply(self, env, d: float) -> None:
        if self.curriculum is None:
            if d != 1.0:
                raise ValueError("this environment has no difficulty levels")
            return
        # settings(1, base) reproduces the target exactly (every rule is the identity at d = 1)
        for name, value in self.curriculum.settings(min(float(d), 1.0), self.base).items():
            setattr(env, name, value)

    def max_steps(self, d: float, full: int) -> int:
        return full if self.curriculum is None or d >= 1.0 else self.curriculum.max_steps(d, full)


def _copy(v):
    if isinstance(v, list):
        return list(v)
    if isinstance(v, np.ndarray):
        return v.copy()
    return v
