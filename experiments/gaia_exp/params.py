"""Parameter specs and validation of ``GAIA_JOB_PARAMS``.

Every tunable value has a :class:`Param` with a default, a type and a one-line help text. The set
of known params of a run is: the general ones, those of the environment's kind (gymnasium or
analytic) and those of the method. Anything else is an error (exit code 2), as is a value of the
wrong type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence


class ParamError(ValueError):
    """A bad GAIA_JOB_PARAMS (unknown name, wrong type, out of range). The CLI exits with 2."""


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    kind: str  # "int", "float", "bool", "ints", "opt_int", "object" or "choice:a|b|c"
    help: str
    minimum: float | None = None

    def describe(self) -> str:
        return f"{self.name}={json.dumps(self.default)}  {self.help}"

    def coerce(self, value: Any) -> Any:
        """Return ``value`` checked against this param's kind, or raise ParamError."""
        bad = ParamError(f"param {self.name!r}: expected {self._kind_text()}, got {json.dumps(value)}")
        kind = self.kind
        if kind == "opt_int" and value is None:
            return None
        if kind in ("int", "opt_int"):
            if isinstance(value, bool):
                raise bad
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                raise bad
            self._check_min(value)
            return value
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad
            self._check_min(float(value))
            return float(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise bad
            return value
        if kind == "ints":
            if isinstance(value, int) and not isinstance(value, bool):
                value = [value]
            if not isinstance(value, list):
                raise bad
            out = []
            for v in value:
                if isinstance(v, float) and v.is_integer():
                    v = int(v)
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise bad
                out.append(v)
            return out
        if kind == "object":
            if not isinstance(value, dict):
                raise bad
            return dict(value)
        if kind.startswith("choice:"):
            choices = kind.split(":", 1)[1].split("|")
            if value not in choices:
                raise bad
            return value
        raise AssertionError(f"unknown param kind {kind}")

    def _check_min(self, value: float) -> None:
        if self.minimum is not None and value < self.minimum:
            raise ParamError(f"param {self.name!r}: must be >= {self.minimum:g}, got {value}")

    def _kind_text(self) -> str:
        return {
            "int": "an integer",
            "opt_int": "an integer or null",
            "float": "a number",
            "bool": "true or false",
            "ints": "a list of positive integers, e.g. [32, 32]",
            "object": "a JSON object",
        }.get(self.kind) or ("one of " + ", ".join(self.kind.split(":", 1)[1].split("|")))


GENERAL_PARAMS: tuple[Param, ...] = (
    Param("stop_when_solved", True, "bool",
          "stop early once the best-ever policy reaches the env's threshold "
          "(for gymnasium envs: confirmed on final_episodes validation episodes)"),
)

GYM_PARAMS: tuple[Param, ...] = (
    Param("hidden", [16], "ints", "hidden layer sizes of the tanh MLP policy"),
    Param("eval_episodes", 5, "int", "episodes per fitness evaluation (--eval-episodes overrides)", 1),
    Param("final_episodes", 20, "int", "fresh episodes for the final evaluation of the best-ever policy", 1),
    Param("validation_episodes", 100, "int",
          "fresh episodes that confirm a best-ever policy at the threshold before stop_when_solved stops: "
          "every block of final_episodes of them must reach the threshold", 1),
    Param("max_episode_steps", None, "opt_int", "episode length cap (null: the env's own limit)", 1),
    Param("env_kwargs", {}, "object",
          "keyword arguments for gymnasium.make, e.g. {\"enable_wind\": true} for LunarLander-v3; "
          "the run, its validation and its final test all use them"),
    Param("backend", "auto", "choice:auto|vector|scalar",
          "auto: gymnasium's numpy vector env where it has one (CartPole), else scalar envs in lockstep"),
)

ANALYTIC_PARAMS: tuple[Param, ...] = (
    Param("dim", 10, "int", "dimension of the analytic objective", 1),
    Param("x0_range", 3.0, "float", "start point drawn uniformly from [-x0_range, x0_range]^dim (from the seed)", 0),
)


def parse_job_params(text: str | None) -> dict[str, Any]:
    """Parse the GAIA_JOB_PARAMS text: empty/None means {}; otherwise a JSON object."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParamError(f"GAIA_JOB_PARAMS is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ParamError("GAIA_JOB_PARAMS must be a JSON object, e.g. {\"pop_size\": 32}")
    return value


def resolve(given: dict[str, Any], specs: Sequence[Param], context: str) -> dict[str, Any]:
    """Merge ``given`` over the specs' defaults; unknown names or bad values raise ParamError."""
    known = {p.name: p for p in specs}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ParamError(
            f"unknown param(s) {', '.join(repr(u) for u in unknown)} for {context}; "
            f"known params: {', '.join(sorted(known))}"
        )
    out = {}
    for p in specs:
        out[p.name] = p.coerce(given[p.name]) if p.name in given else p.default
        if isinstance(out[p.name], (list, dict)):
            out[p.name] = type(out[p.name])(out[p.name])
    return out
