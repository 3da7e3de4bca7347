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
SPHERE_BUDGETS = {"cma_es": (3000, 1e6), "openai_es": (5000, 100), "random_search": (3000, 10), "island_model": (4000, 1e4),
                  "curriculum_cma_es": (3000, 1e6), "neuromod_cma_es": (3000, 1e6), "neuromod_island": (4000, 1e4),
                  "hybrid_cma_ff": (3000, 1e6),
                  # the CPPN draws the vector from 10 coordinates: it cannot follow a random start point exactly
                  "indirect_encoding": (3000, 1.5),
                  "ppo": (3000, 5)}
# params for the analytic runs (PPO on a one-step bandit wants short rollouts and a larger step)
SPHERE_PARAMS = {"ppo": {"n_steps": 16, "learning_rate": 3e-3}}


def skip_without_extra(method):
    if method == "ppo":
        from gaia_exp.methods import ppo

        if not ppo._have_sb3():
            pytest.skip("ppo's extra (stable-baselines3 + PyTorch, requirements-ppo.txt) is not installed in this "
                        "Python, so the ppo method cannot run here")


@pytest.mark.parametrize("method", methods.NAMES)
def test_method_reduces_sphere(method, capsys, monkeypatch, tmp_path):
    skip_without_extra(method)
    budget, factor = SPHERE_BUDGETS[method]
    code, out, err = run_inprocess(capsys, monkeypatch, tmp_path,
                                   ["--method", method, "--env", "sphere", "--max-evals", budget, "--seed", 3],
                                   params={"stop_when_solved": False, **SPHERE_PARAMS.get(method, {})})
    assert code == 0, err
    gens = [parse_line(line)["metrics"] for line in gen_lines(out)]
    first = -gens[0]["best"]
    final = final_of(out)
    assert final["evals"] <= budget
    assert -final["best_ever"] * factor <= first, (first, final)
    assert final["mean"] == final["best_ever"]  # deterministic objective


@pytest.mark.parametrize("method", methods.NAMES)
def test_method_improves_rastrigin(method, capsys, monkeypatch, tmp_path):
    skip_without_extra(method)
    code, out, err = run_inprocess(capsys, monkeypatch, tmp_path,
                                   ["--method", method, "--env", "rastrigin", "--max-evals", 2000],
                                   params={"dim": 5, **SPHERE_PARAMS.get(method, {})})
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


# -- method internals, driven through their entry point with a recording stand-in for Run --------

class RecordingRun:
    """The part of gaia_exp.run.Run that methods use; records every batch and its fitness."""

    def __init__(self, x0, fitness, max_evals, seed=0):
        self.x0 = np.asarray(x0, dtype=np.float64)
        self.dim = self.x0.size
        self.seed = seed
        self.max_evals = max_evals
        self.fitness = fitness
        self.evals = 0
        self.stop_reason = None
        self.best_ever = -np.inf
        self.best_params = self.x0.copy()
        self.batches: list[np.ndarray] = []
        self.fitnesses: list[np.ndarray] = []
        self.sigmas: list[float] = []

    def can_afford(self, n):
        return self.evals + n <= self.max_evals

    def evaluate(self, X):
        X = np.array(X, dtype=np.float64)
        f = np.asarray(self.fitness(X), dtype=np.float64)
        self.batches.append(X)
        self.fitnesses.append(f)
        self.evals += len(X)
        i = int(np.argmax(f))
        if f[i] >= self.best_ever:
            self.best_ever, self.best_params = float(f[i]), X[i].copy()
        return f

    def end_generation(self, sigma):
        self.sigmas.append(float(sigma))
        return False


def neg_sphere(X):
    return -np.sum((X - 1.5) ** 2, axis=1)


OES = {"pop_size": 8, "sigma": 0.1, "lr": 0.05, "weight_decay": 0.005}


def test_openai_es_antithetic_pairs():
    from gaia_exp.methods import openai_es

    x0 = np.linspace(-1, 1, 5)
    run = RecordingRun(x0, neg_sphere, max_evals=8 * 6)
    openai_es.run(run, dict(OES))
    assert len(run.batches) == 6 and all(X.shape == (8, 5) for X in run.batches)
    for g, X in enumerate(run.batches):
        plus, minus = X[:4], X[4:]
        centre = (plus + minus) / 2  # theta + s·e and theta - s·e: the same centre for every pair
        np.testing.assert_allclose(centre, np.broadcast_to(centre[0], centre.shape), rtol=0, atol=1e-12)
        if g == 0:
            np.testing.assert_allclose(centre[0], x0, atol=1e-12)
        d = (plus - minus) / 2
        assert (np.linalg.norm(d, axis=1) > 0).all()
        assert len({tuple(row) for row in d}) == 4  # distinct directions, not one repeated
    # odd pop_size is rounded up to keep the pairs
    run = RecordingRun(x0, neg_sphere, max_evals=12)
    openai_es.run(run, dict(OES, pop_size=5))
    assert [len(X) for X in run.batches] == [6, 6]
    np.testing.assert_allclose(run.batches[0][:3] + run.batches[0][3:], 2 * np.broadcast_to(x0, (3, 5)), atol=1e-12)


def test_openai_es_update_is_adam_on_the_centered_rank_gradient():
    from gaia_exp.methods import openai_es

    x0 = np.array([0.3, -0.2, 0.8, 0.0])
    p = dict(OES, pop_size=6)
    run = RecordingRun(x0, neg_sphere, max_evals=6 * 3)
    openai_es.run(run, p)
    adam = Adam(4, p["lr"])
    theta = x0.copy()
    for X, f, X_next in zip(run.batches, run.fitnesses, run.batches[1:]):
        eps = (X[:3] - theta) / p["sigma"]
        r = centered_ranks(f)
        grad = (r[:3] - r[3:]) @ eps / (6 * p["sigma"]) - p["weight_decay"] * theta
        theta = theta + adam.step(grad)
        np.testing.assert_allclose((X_next[:3] + X_next[3:]) / 2, np.broadcast_to(theta, (3, 4)), atol=1e-10)
    assert run.sigmas == [p["sigma"]] * 3


def test_openai_es_shaping_depends_only_on_fitness_ranks():
    """Any strictly increasing transform of the fitness leaves the search path unchanged (raw,
    unshaped fitness would not), and reversing the order sends it the other way."""
    from gaia_exp.methods import openai_es

    x0 = np.zeros(6)
    runs = {}
    for name, fit in {"plain": neg_sphere,
                      "monotone": lambda X: np.exp(neg_sphere(X) / 3) * 1e4 - 7,
                      "cubed": lambda X: neg_sphere(X) ** 3,
                      "reversed": lambda X: -neg_sphere(X)}.items():
        runs[name] = RecordingRun(x0, fit, max_evals=8 * 10)
        openai_es.run(runs[name], dict(OES))
    for name in ("monotone", "cubed"):
        for a, b in zip(runs["plain"].batches, runs[name].batches):
            np.testing.assert_array_equal(a, b)
    centre = lambda run: (run.batches[-1][:4] + run.batches[-1][4:]).mean(axis=0) / 2  # noqa: E731
    assert np.linalg.norm(centre(runs["plain"]) - 1.5) < np.linalg.norm(x0 - 1.5) - 0.2  # towards the optimum
    assert np.linalg.norm(centre(runs["reversed"]) - 1.5) > np.linalg.norm(x0 - 1.5) + 0.2  # away from it


def test_island_model_migrates_each_islands_best_to_the_next_island():
    from gaia_exp.methods import island_model

    k, pop, interval, gens = 3, 6, 2, 5
    run = RecordingRun(np.full(4, 0.5), neg_sphere, max_evals=k * pop * gens, seed=11)
    island_model.run(run, {"n_islands": k, "pop_size": pop, "sigma0": 0.5, "migration_interval": interval})
    assert len(run.batches) == gens
    asks = [X.reshape(k, pop, -1) for X in run.batches]  # [generation][island][candidate]
    fits = [f.reshape(k, pop) for f in run.fitnesses]
    best_x = [None] * k
    best_f = [-np.inf] * k
    for g in range(gens):  # generation g + 1
        if g > 0:
            migrated = (g % interval == 0)  # after generations interval, 2·interval, ...
            for i in range(k):
                src = (i - 1) % k  # ring: island i receives island i-1's best-ever
                first = asks[g][i][0]
                if migrated:
                    np.testing.assert_array_equal(first, best_x[src])
                    assert not np.array_equal(first, best_x[i])  # someone else's best, not its own
                else:
                    earlier = np.concatenate([a.reshape(-1, a.shape[-1]) for a in asks[:g]])
                    assert not (earlier == first).all(axis=1).any()  # a fresh sample, nothing injected
        for i in range(k):
            j = int(np.argmax(fits[g][i]))
            if fits[g][i][j] > best_f[i]:
                best_f[i], best_x[i] = fits[g][i][j], asks[g][i][j].copy()
    # islands are genuinely different populations (different seeds), so migration carries news
    assert not np.array_equal(asks[0][0], asks[0][1])


def test_island_model_without_migration_never_injects():
    """Control: the same run with a migration interval longer than the run has no copied points."""
    from gaia_exp.methods import island_model

    k, pop, gens = 3, 6, 5
    run = RecordingRun(np.full(4, 0.5), neg_sphere, max_evals=k * pop * gens, seed=11)
    island_model.run(run, {"n_islands": k, "pop_size": pop, "sigma0": 0.5, "migration_interval": 100})
    rows = np.concatenate(run.batches)
    assert len(np.unique(rows, axis=0)) == len(rows)
