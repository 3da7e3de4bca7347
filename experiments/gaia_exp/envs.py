"""Environments: gymnasium control tasks and fast analytic objectives.

Fitness is always "higher is better": a gymnasium env's fitness is the mean episode return; an
analytic objective's fitness is the *negated* objective value (so 0 is the optimum and the
printed Best/Ever rise towards it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np


class EnvError(ValueError):
    """Unknown or unavailable environment. The CLI exits with 2."""


@dataclass(frozen=True)
class EnvInfo:
    name: str
    kind: str  # "gym" or "analytic"
    description: str
    threshold: float | None = None  # "solved" when the final mean return reaches this
    needs: str | None = None  # optional extra that provides it


ANALYTIC_THRESHOLD = -1e-8  # solved when f(x) <= 1e-8, i.e. fitness >= -1e-8

CURATED: tuple[EnvInfo, ...] = (
    EnvInfo("CartPole-v1", "gym", "balance a pole on a cart; 2 discrete actions; solved at 475 (default)"),
    EnvInfo("Acrobot-v1", "gym", "swing a two-link arm up; 3 discrete actions; solved at -100"),
    EnvInfo("MountainCarContinuous-v0", "gym", "drive an underpowered car up a hill; 1 continuous action; solved at 90"),
    EnvInfo("Pendulum-v1", "gym",
            "swing up and hold a pendulum; 1 continuous action; gymnasium sets no threshold, GAIA uses -200"),
    EnvInfo("LunarLander-v3", "gym", "land a lander; 4 discrete actions; solved at 200 (Box2D)", needs="box2d"),
    EnvInfo("BipedalWalker-v3", "gym", "walk a two-legged robot over rough ground; 4 continuous actions; solved at 300 (Box2D)",
            needs="box2d"),
    EnvInfo("BipedalWalkerHardcore-v3", "gym",
            "the walker with stumps, pits and stairs; 4 continuous actions; solved at 300 (Box2D)", needs="box2d"),
    EnvInfo("sphere", "analytic", "f(x) = sum(x^2), any dim (param dim); fitness = -f; solved at f <= 1e-8"),
    EnvInfo("rastrigin", "analytic",
            "f(x) = 10 d + sum(x^2 - 10 cos(2 pi x)), any dim (param dim); fitness = -f; solved at f <= 1e-8"),
)

# Thresholds GAIA uses where gymnasium's registry has none.
THRESHOLD_OVERRIDES = {"Pendulum-v1": -200.0}

DEFAULT_ENV = "CartPole-v1"


def lookup(name: str) -> EnvInfo:
    """Find an environment by name (case-insensitive for the curated ones).

    Any other registered gymnasium id with a flat Box observation and a Discrete or Box action
    space also works; its threshold comes from gymnasium's registry.
    """
    for info in CURATED:
        if info.name.lower() == name.lower():
            return info
    import gymnasium as gym

    try:
        spec = gym.spec(name)
    except Exception:
        known = ", ".join(i.name for i in CURATED)
        raise EnvError(f"unknown environment {name!r}; known: {known} (or any gymnasium id)") from None
    return EnvInfo(spec.id, "gym", "gymnasium environment", spec.reward_threshold)


def threshold_of(info: EnvInfo) -> float | None:
    if info.kind == "analytic":
        return ANALYTIC_THRESHOLD
    if info.name in THRESHOLD_OVERRIDES:
        return THRESHOLD_OVERRIDES[info.name]
    import gymnasium as gym

    t = gym.spec(info.name).reward_threshold
    return None if t is None else float(t)


def box2d_has_wheels() -> bool:
    """Whether PyPI has a wheel of ``box2d`` 2.3.10 for this Python and platform: the condition
    under which requirements.txt installs it (its environment markers say the same)."""
    import platform
    import sys

    machine = platform.machine()
    return (3, 10) <= sys.version_info[:2] < (3, 14) and (
        machine in ("x86_64", "AMD64") or (sys.platform == "darwin" and machine == "arm64"))


def box2d_missing_message(env_name: str, exc: Exception) -> str:
    if box2d_has_wheels():
        how = ("requirements.txt installs it on this platform: rebuild the environment with "
               "pip install -r requirements.txt (a GAIA worker does so itself when requirements.txt changes)")
    else:
        how = ("box2d 2.3.10 has wheels only for CPython 3.10-3.13 on Linux x86_64, macOS arm64 and Windows x64; "
               "here it must be built: pip install swig, then pip install box2d-py==2.3.8 pygame-ce "
               "(needs a C++ compiler)")
    return f"{env_name} needs Box2D, which this Python cannot import ({exc}); {how}"


def check_available(info: EnvInfo, env_kwargs: dict | None = None) -> None:
    """Build the env once so a missing dependency (or a keyword it does not take) fails early
    with a clear message."""
    if info.kind != "gym":
        return
    import gymnasium as gym
    from gymnasium.error import DependencyNotInstalled

    try:
        env = gym.make(info.name, disable_env_checker=True, **(env_kwargs or {}))
    except (TypeError, AssertionError, ValueError) as exc:
        raise EnvError(f"{info.name} does not take env_kwargs {json.dumps(env_kwargs)}: {exc}") from None
    except (DependencyNotInstalled, ImportError, ModuleNotFoundError) as exc:
        if info.needs == "box2d" or "box2d" in str(exc).lower():
            raise EnvError(box2d_missing_message(info.name, exc)) from None
        raise EnvError(f"{info.name} cannot be created: {exc}") from None
    try:
        from gymnasium import spaces

        obs, act = env.observation_space, env.action_space
        if not (isinstance(obs, spaces.Box) and len(obs.shape) == 1):
            raise EnvError(f"{info.name}: only flat Box observations are supported, got {obs}")
        if not isinstance(act, (spaces.Discrete, spaces.Box)):
            raise EnvError(f"{info.name}: only Discrete or Box actions are supported, got {act}")
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------
# Analytic objectives (minimised; fitness = -value)


def sphere(X: np.ndarray) -> np.ndarray:
    return np.sum(X * X, axis=1)


def rastrigin(X: np.ndarray, amplitude: float = 10.0) -> np.ndarray:
    return amplitude * X.shape[1] + np.sum(X * X - amplitude * np.cos(2.0 * math.pi * X), axis=1)


ANALYTIC = {"sphere": sphere, "rastrigin": rastrigin}
