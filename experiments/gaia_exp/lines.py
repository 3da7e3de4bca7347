"""The GAIA stdout line format: a writer for the lines run_all.py prints, and a reference parser.

Grammar (specified in the repository's ``docs/OUTPUT.md``, shared with the Rust worker's parser
in ``gaia-core/src/grammar.rs``; ``tests/fixtures/lines.jsonl`` pins it down):

- A *gen line* starts, after optional leading whitespace, with ``Gen`` and an integer generation,
  then fields separated by ``|``. Each field is ``Name: value``. Names normalise
  case-insensitively: Best->best, Ever->best_ever, Mean->mean, σ / Sigma / σ̄ (U+03C3 U+0304)
  ->sigma, Evals->evals; any other name is lowercased with spaces and dashes turned into ``_``.
  Values are numbers (optional sign, decimals, exponent, thousands separators like ``3,840``)
  or ``nan``, ``inf``, ``-inf``; free text after a value and whitespace
  (``Mean: -19.9  ← SOLVED``) is ignored. A bare field ``14.2s`` is the elapsed seconds
  (``elapsed``); any text after it (``✅ SOLVED!``) is ignored too. Fields that do not parse are
  skipped; the line stays a gen line. The generation is the metric ``generation``.
- Over one attempt (``OutputParser``): a gen line with Best but no Ever gets ``best_ever`` = the
  running maximum of Best (and of any Ever printed before) so far; scores are maximised.
- ``@gaia {json}``: the line starts with ``@gaia `` followed by a JSON object. Invalid JSON, or
  JSON that is not an object, makes it a log line.
- Anything else is a log line. Parsing never raises.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

SIGMA_NAMES = {"σ", "sigma", "σ\u0304"}
KEY_MAP = {"best": "best", "ever": "best_ever", "mean": "mean", "evals": "evals"}

_GEN_RE = re.compile(r"^\s*Gen[ \t]*([+-]?\d+)[ \t]*$")
_NUM = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][+-]?\d+)?|[+-]?\.\d+(?:[eE][+-]?\d+)?"
_NUM_RE = re.compile(rf"^(?:{_NUM})$")
_SPECIAL = {"nan": math.nan, "+nan": math.nan, "-nan": math.nan, "inf": math.inf, "+inf": math.inf, "-inf": -math.inf}
_ELAPSED_RE = re.compile(rf"^({_NUM})s(?:\s.*)?$", re.S)


def normalise_key(name: str) -> str:
    low = name.strip().lower()
    if low in SIGMA_NAMES:
        return "sigma"
    if low in KEY_MAP:
        return KEY_MAP[low]
    return low.replace(" ", "_").replace("\t", "_").replace("-", "_")


def parse_number(text: str) -> float | None:
    """A metric value, or None if ``text`` is not one."""
    t = text.strip()
    if t.lower() in _SPECIAL:
        return _SPECIAL[t.lower()]
    if not _NUM_RE.match(t):
        return None
    return float(t.replace(",", ""))


def parse_value(text: str) -> float | None:
    """A field's value: a number, optionally followed by free text after whitespace."""
    parts = text.split(None, 1)
    return parse_number(parts[0]) if parts else None


def parse_line(line: str) -> dict[str, Any]:
    """Classify one stdout line: {"kind": "gen", "metrics": {...}} | {"kind": "gaia", "json": {...}}
    | {"kind": "log"}."""
    try:
        line = line.rstrip("\r\n")
        if line.startswith("@gaia "):
            try:
                obj = json.loads(line[len("@gaia "):])
            except ValueError:
                return {"kind": "log"}
            return {"kind": "gaia", "json": obj} if isinstance(obj, dict) else {"kind": "log"}
        fields = line.split("|")
        m = _GEN_RE.match(fields[0])
        if not m:
            return {"kind": "log"}
        metrics: dict[str, float] = {"generation": float(int(m.group(1)))}
        for field in fields[1:]:
            f = field.strip()
            if ":" in f:
                name, _, value = f.partition(":")
                if not name.strip():
                    continue
                v = parse_value(value)
                if v is not None:
                    metrics[normalise_key(name)] = v
            else:
                e = _ELAPSED_RE.match(f)
                if e:
                    metrics["elapsed"] = float(e.group(1).replace(",", ""))
        return {"kind": "gen", "metrics": metrics}
    except Exception:  # the parser never fails: anything odd is a log line
        return {"kind": "log"}


class OutputParser:
    """``parse_line`` over one attempt's output, with the running best: a gen line with Best but
    no Ever gets ``best_ever`` = the maximum of Best (and of any Ever) so far."""

    def __init__(self) -> None:
        self.best_so_far: float | None = None

    def parse(self, line: str) -> dict[str, Any]:
        parsed = parse_line(line)
        if parsed["kind"] != "gen":
            return parsed
        m = parsed["metrics"]
        for v in (m.get("best"), m.get("best_ever")):
            if v is not None and not math.isnan(v):
                self.best_so_far = v if self.best_so_far is None else max(self.best_so_far, v)
        if "best" in m and "best_ever" not in m and self.best_so_far is not None:
            m["best_ever"] = self.best_so_far
        return parsed


# ---------------------------------------------------------------------------------------------
# Writer


def _fmt_value(v: float, precise: bool) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return f"{'nan':>7}"
    if math.isinf(v):
        return f"{('inf' if v > 0 else '-inf'):>7}"
    if precise:
        return f"{v:>7.4g}"
    return f"{v:7.1f}"


def _fmt_sigma(s: float) -> str:
    if s is None or not math.isfinite(s):
        return "nan" if s is None or math.isnan(s) else ("inf" if s > 0 else "-inf")
    return f"{s:.4f}" if s == 0 or abs(s) >= 1e-3 else f"{s:.3e}"


def format_gen_line(gen: int, best: float, ever: float, mean: float, sigma: float, evals: int,
                    elapsed: float, precise: bool = False, extra=()) -> str:
    """``Gen   12 | Best:   187.3 | Ever:   201.0 | Mean:    95.4 | σ: 0.4123 | Evals:    3,840 |   14.2s``

    ``precise`` prints 4 significant digits instead of one decimal (analytic objectives, whose
    values approach 0). ``extra``: (name, value) pairs printed as ``Name: value`` fields before
    the elapsed time (``difficulty`` -> ``Difficulty: 0.40``; integers without decimals)."""
    fields = "".join(f" | {_extra_name(name)}: {_fmt_extra(value)}" for name, value in extra)
    return (f"Gen {gen:4d} | Best: {_fmt_value(best, precise)} | Ever: {_fmt_value(ever, precise)} | "
            f"Mean: {_fmt_value(mean, precise)} | σ: {_fmt_sigma(sigma)} | Evals: {evals:8,d}{fields} | {elapsed:6.1f}s")


def _extra_name(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _fmt_extra(v) -> str:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{int(v):,d}"
    if v is None or not math.isfinite(v):
        return _fmt_sigma(v)
    return f"{v:.2f}" if abs(v) >= 0.01 or v == 0 else f"{v:.3e}"


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def gaia_line(obj: dict) -> str:
    """``@gaia {json}`` on one line (non-finite floats become null)."""
    return "@gaia " + json.dumps(_json_safe(obj), separators=(", ", ": "), ensure_ascii=False, allow_nan=False)
