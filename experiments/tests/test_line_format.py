"""The GAIA line grammar: the shared fixture (also read by the Rust parser's tests) and the lines
run_all.py prints."""

import csv
import json
import math
import random
from pathlib import Path

import pytest

from conftest import final_of, gen_lines, run_script
from gaia_exp.lines import OutputParser, format_gen_line, gaia_line, parse_line

FIXTURE = Path(__file__).parent / "fixtures" / "lines.jsonl"


def load_fixture():
    with open(FIXTURE, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def expected_value(v):
    if v is None:
        return math.nan
    if v == "inf":
        return math.inf
    if v == "-inf":
        return -math.inf
    return float(v)


def same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def test_fixture_shape():
    cases = load_fixture()
    assert len(cases) >= 40
    kinds = {c["kind"] for c in cases}
    assert kinds == {"gen", "gaia", "log"}
    for c in cases:
        assert set(c) <= {"line", "kind", "metrics", "json"}
        assert isinstance(c["line"], str) and "\n" not in c["line"]
        if c["kind"] == "gen":
            assert "generation" in c["metrics"] and "json" not in c
        elif c["kind"] == "gaia":
            assert isinstance(c["json"], dict) and "metrics" not in c
        else:
            assert "metrics" not in c and "json" not in c
    lines = " ".join(c["line"] for c in cases)
    for needle in ["\u03c3\u0304", "✅ SOLVED!", "1,350", "nan", "-inf", "e-0", "\t", "Entropy",
                   "← SOLVED (full difficulty)"]:
        assert needle in lines, needle


@pytest.mark.parametrize("case", load_fixture(), ids=lambda c: c["line"][:40])
def test_reference_parser_agrees_with_fixture(case):
    got = parse_line(case["line"])
    assert got["kind"] == case["kind"]
    if case["kind"] == "gen":
        want = {k: expected_value(v) for k, v in case["metrics"].items()}
        assert set(got["metrics"]) == set(want)
        for k, v in want.items():
            assert same(got["metrics"][k], v), (k, got["metrics"][k], v)
    elif case["kind"] == "gaia":
        assert got["json"] == case["json"]


def test_parser_never_raises():
    rng = random.Random(1)
    alphabet = "Gen |:0123456789.,-+eEnaifσ\u0304s✅@gaia{}\"[] \t\x00\ufffd"
    for _ in range(3000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert parse_line(line)["kind"] in ("gen", "gaia", "log")
        assert parse_line("Gen 1 |" + line)["kind"] == "gen"


def test_writer_matches_the_original_format():
    line = format_gen_line(12, 187.3, 201.0, 95.4, 0.4123, 3840, 14.2)
    assert line == "Gen   12 | Best:   187.3 | Ever:   201.0 | Mean:    95.4 | σ: 0.4123 | Evals:    3,840 |   14.2s"
    m = parse_line(line)["metrics"]
    assert m == {"generation": 12, "best": 187.3, "best_ever": 201.0, "mean": 95.4, "sigma": 0.4123,
                 "evals": 3840, "elapsed": 14.2}


@pytest.mark.parametrize("values", [
    (1, -1.234e-7, -9.9e-9, -3.2e-3, 2.5e-6, 1234567, 0.04),
    (3, math.nan, math.inf, -math.inf, math.nan, 0, 0.0),
    (9999, -123456.7, 0.0, -0.05, 12.0, 20000, 99999.9),
])
def test_writer_output_parses_back(values):
    gen, best, ever, mean, sigma, evals, elapsed = values
    for precise in (False, True):
        m = parse_line(format_gen_line(gen, best, ever, mean, sigma, evals, elapsed, precise=precise))["metrics"]
        assert m["generation"] == gen and m["evals"] == evals
        for key, v in (("best", best), ("best_ever", ever), ("mean", mean)):
            if math.isfinite(v):
                tol = abs(v) * 1e-3 if precise else 0.051
                assert abs(m[key] - v) <= tol, (key, m[key], v)
            else:
                assert same(m[key], v)


def test_gaia_line_is_valid_and_single_line():
    line = gaia_line({"final": {"mean": math.nan, "status": "a\nb σ"}})
    assert "\n" not in line
    assert parse_line(line) == {"kind": "gaia", "json": {"final": {"mean": None, "status": "a\nb σ"}}}


def _check_printed(stdout: str, out_dir: Path, precise: bool):
    lines = stdout.splitlines()
    kinds = [parse_line(line)["kind"] for line in lines]
    assert "log" not in kinds, [l for l, k in zip(lines, kinds) if k == "log"]
    gens = [parse_line(line)["metrics"] for line in gen_lines(stdout)]
    assert gens, stdout
    with open(out_dir / "curve.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(gens)
    for m, row in zip(gens, rows):
        assert set(m) == {"generation", "best", "best_ever", "mean", "sigma", "evals", "elapsed"}
        assert m["generation"] == int(row["generation"]) and m["evals"] == int(row["evals"])
        for key in ("best", "best_ever", "mean"):
            v = float(row[key])
            tol = abs(v) * 1e-3 + 1e-12 if precise else 0.051
            assert abs(m[key] - v) <= tol, (key, m[key], v)
        s = float(row["sigma"])
        assert abs(m["sigma"] - s) <= max(5.1e-5, abs(s) * 1e-3)
        assert abs(m["elapsed"] - float(row["elapsed"])) <= 0.051
    assert [m["generation"] for m in gens] == list(range(1, len(gens) + 1))
    assert all(b["best_ever"] >= a["best_ever"] for a, b in zip(gens, gens[1:]))
    assert parse_line(lines[-1])["kind"] == "gaia" and "final" in parse_line(lines[-1])["json"]


def test_printed_lines_parse_cartpole(tmp_path):
    p = run_script(["--method", "cma_es", "--max-evals", 400, "--workers", 1], out_dir=tmp_path,
                   params={"stop_when_solved": False, "eval_episodes": 2})
    assert p.returncode == 0, p.stderr
    _check_printed(p.stdout, tmp_path, precise=False)
    assert final_of(p.stdout)["evals"] <= 400


def test_printed_lines_parse_sphere(tmp_path):
    p = run_script(["--method", "openai_es", "--env", "sphere", "--max-evals", 2000], out_dir=tmp_path)
    assert p.returncode == 0, p.stderr
    _check_printed(p.stdout, tmp_path, precise=True)


def test_best_ever_is_the_running_maximum_of_best_when_ever_is_missing():
    p = OutputParser()

    def ever(line):
        return p.parse(line)["metrics"].get("best_ever")

    assert ever("Gen 1 | Mean: 3") is None
    assert ever("Gen 2 | Best: nan") is None
    assert ever("Gen 3 | Best: -5") == -5
    assert ever("Gen 4 | Best: -7") == -5
    assert ever("Gen 5 | Best: -2 | Ever: 10") == 10
    assert ever("Gen 6 | Best: -1") == 10
    assert ever("Gen 7 | Best: nan") == 10
    assert ever("Gen 8 | Best: 11") == 11
    assert p.parse("hello") == {"kind": "log"}
    assert OutputParser().parse("Gen 1 | Best: 1")["metrics"]["best_ever"] == 1
