"""The scores that normalise results across environments: random and solved, as
``run_all.py --list --json`` prints them (GAIA ships a copy for ``gaia compare`` and its tests
keep the two equal)."""

import json

import numpy as np
import pytest

from conftest import run_script
from gaia_exp import envs


def test_list_json_gives_every_env_its_random_and_solved_score():
    p = run_script(["--list", "--json"])
    assert p.returncode == 0, p.stderr
    listed = json.loads(p.stdout)
    from gaia_exp import methods

    assert [m["name"] for m in listed["methods"]] == list(methods.NAMES)
    assert all(m["summary"] for m in listed["methods"])
    by_name = {e["name"]: e for e in listed["envs"]}
    assert set(by_name) == {i.name for i in envs.CURATED}
    for e in listed["envs"]:
        assert e["random_score"] < e["solved_score"], e
    assert by_name["CartPole-v1"]["solved_score"] == 475.0
    assert by_name["sphere"]["random_score"] == -30.0  # dim 10, x0 in [-3, 3]: 10 * 9 / 3
    assert run_script(["--json"]).returncode == 2


def test_analytic_random_scores_are_the_expected_start_fitness():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3.0, 3.0, (200_000, 10))
    for name in ("sphere", "rastrigin"):
        measured = -float(np.mean(envs.ANALYTIC[name](x)))
        assert envs.random_score_of(envs.lookup(name)) == pytest.approx(measured, rel=0.01)


@pytest.mark.parametrize("name", ["CartPole-v1", "Acrobot-v1", "MountainCarContinuous-v0"])
def test_declared_random_scores_match_a_random_policy(name):
    import gymnasium as gym

    env = gym.make(name)
    rets = []
    for ep in range(40):
        env.reset(seed=1000 + ep)
        env.action_space.seed(1000 + ep)
        done, ret = False, 0.0
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            ret += r
            done = term or trunc
        rets.append(ret)
    env.close()
    se = np.std(rets) / np.sqrt(len(rets))
    declared = envs.RANDOM_SCORES[name]
    # Five standard errors, and 1 % for the rounding of the declared value.
    assert abs(np.mean(rets) - declared) <= 5 * se + 0.01 * abs(declared) + 1.0, (np.mean(rets), se)
