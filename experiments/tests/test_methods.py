"""Every method improves the analytic objectives within a small budget; method internals."""

import json

import numpy as np
import pytest

from conftest import final_of, gen_lines
from gaia_exp import cli, methods
from gaia_exp.lines import parse_line
from gaia_exp.methods.openai_es import Adam, centered_ranks


def run_inprocess(capsys, monkeypatch, tmp_path, argv, params=None):
    monkeypatch.setenv("GAIA_OUTPUT_DIR", str(tmp_path))
    if params is None:
        monkeypatch.delenv("GAIA_JOB_PARAMS", raising=False)
    else:
        monkeypatch.setenv("GAIA_JOB_PARAMS", json.dumps(params))
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


# budget, and the factor by which f(best) must fall below f(best of generation 1)
SPHERE_BUDGETS = {"cma_es": (3000, 1e6), "openai_es": (5000, 100), "random_search": (3000, 10), "island_model": (4000, 1e4)}


@pytest.mark.parametrize("method", methods.NAMES)
def test_method_reduces_sphere(method, capsys, monkeypatch, tmp_path):
    budget, factor = SPHERE_BUDGETS[method]
    code, out, err = run_inprocess(capsys, monkeypatch, tmp_path,
                                   ["--method", method, "--env", "sphere", "--max-evals", budget, "--seed", 3],
                                   params={"stop_when_solved": False})
    assert code == 0, err
    gens = [parse_line(line)["metrics"] for line in gen_lines(out)]
    first = -gens[0]["best"]
    final = final_of(out)
    assert final["evals"] <= budget
    assert -final["best_ever"] * factor <= first, (first, final)
    assert final["mean"] == final["best_ever"]  # deterministic objective


@pytest.mark.parametrize("method", methods.NAMES)
def test_method_improves_rastrigin(method, capsys, monkeypatch, tmp_path):
    code, out, err = run_inprocess(capsys, monkeypatch, tmp_path,
                                   ["--method", method, "--env", "rastrigin", "--max-evals", 2000],
                                   params={"dim": 5})
    assert code == 0, err
    gens = [parse_line(line)["metrics"] for line in gen_lines(out)]
    assert final_of(out)["best_ever"] > gens[0]["best"]


def test_cma_es_solves_sphere_and_stops_early(capsys, monkeypatch, tmp_path):
    code, out, _ = run_inprocess(capsys, monkeypatch, tmp_path, ["--method", "cma_es", "--env", "sphere",
                                                                 "--max-evals", 20000])
    final = final_of(out)
    assert code == 0 and final["solved"] and final["stop_reason"] == "solved"
    assert final["evals"] < 20000 and final["best_ever"] >= -1e-8


def test_budget_is_never_exceeded(capsys, monkeypatch, tmp_path):
    # island_model: 4 islands x 10 = 40 evals per generation; 130 allows 3 generations.
    code, out, _ = run_inprocess(capsys, monkeypatch, tmp_path, ["--method", "island_model", "--env", "sphere",
                                                                 "--max-evals", 130], params={"pop_size": 10})
    assert code == 0
    assert [parse_line(l)["metrics"]["evals"] for l in gen_lines(out)] == [40, 80, 120]


def test_pop_size_param_is_used(capsys, monkeypatch, tmp_path):
    code, out, _ = run_inprocess(capsys, monkeypatch, tmp_path, ["--method", "cma_es", "--env", "sphere",
                                                                 "--max-evals", 100],
                                 params={"pop_size": 32, "sigma0": 0.3, "dim": 3})
    assert code == 0
    assert parse_line(gen_lines(out)[0])["metrics"]["evals"] == 32
    assert json.loads((tmp_path / "result.json").read_text())["params"]["sigma0"] == 0.3


def test_centered_ranks():
    r = centered_ranks(np.array([3.0, -1.0, 10.0, 0.0]))
    assert r.tolist() == pytest.approx([1 / 6, -0.5, 0.5, -1 / 6])
    assert r.sum() == pytest.approx(0.0)


def test_adam_first_step_is_lr_times_sign():
    step = Adam(3, lr=0.1).step(np.array([2.0, -5.0, 0.0]))
    assert step == pytest.approx([0.1, -0.1, 0.0], abs=1e-6)


def test_every_method_has_docs_and_params():
    for name in methods.NAMES:
        mod = methods.get(name)
        assert methods.summary(name) and mod.run.__doc__
        assert all(p.default is None or p.coerce(p.default) == p.default for p in mod.PARAMS)
