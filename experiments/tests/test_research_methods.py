"""The methods of issue 20 (curriculum, neuromodulated plasticity, islands, forward-forward
hybrid, indirect encoding, PPO): each solves CartPole, is deterministic given its seed, and its
parts do what their docstrings say."""

import json
import re

import numpy as np
import pytest
from gymnasium import spaces

from conftest import EXPERIMENTS as EXPERIMENTS_DIR, final_of, gen_lines, run_script
from gaia_exp import cli, curriculum, methods
from gaia_exp.evaluation import EpisodeRunner, GymConfig
from gaia_exp.lines import parse_line
from gaia_exp.policy import MLPPolicy, NeuromodPolicy
from test_methods import RecordingRun, neg_sphere, skip_without_extra

NEW = ["curriculum_cma_es", "neuromod_cma_es", "neuromod_island", "hybrid_cma_ff", "indirect_encoding", "ppo"]


def run_inprocess(capsys, monkeypatch, tmp_path, argv, params=None):
    monkeypatch.setenv("GAIA_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("GAIA_JOB_PARAMS", json.dumps(params or {}))
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def without_time(out: str) -> list[str]:
    lines = [re.sub(r"\|\s*[0-9.]+s\s*$", "", line) for line in out.splitlines()]
    return [re.sub(r'"wall_time_s": [0-9.]+', "", line) for line in lines]


# -- CartPole: solved within a small budget (seeds and settings picked to keep the fast ones fast) --

# method -> (seed, params, fast): fast ones run in the default suite, the others with -m slow
CARTPOLE = {
    "curriculum_cma_es": (3, {}, True),
    "hybrid_cma_ff": (3, {}, True),
    "indirect_encoding": (0, {}, True),
    "neuromod_cma_es": (2, {}, False),
    "neuromod_island": (1, {}, False),
    "ppo": (0, {}, False),
}


def _solve_cartpole(method, capsys, monkeypatch, tmp_path):
    skip_without_extra(method)
    seed, params, _ = CARTPOLE[method]
    out = run_inprocess(capsys, monkeypatch, tmp_path,
                        ["--method", method, "--max-evals", 20000, "--seed", seed, "--workers", 1], params)
    final = final_of(out)
    assert final["solved"] and final["mean"] >= 475 and final["stop_reason"] == "solved", final
    assert final["evals"] <= 20000


@pytest.mark.parametrize("method", [m for m, (_, _, fast) in CARTPOLE.items() if fast])
def test_method_solves_cartpole(method, capsys, monkeypatch, tmp_path):
    _solve_cartpole(method, capsys, monkeypatch, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m, (_, _, fast) in CARTPOLE.items() if not fast])
def test_method_solves_cartpole_slow(method, capsys, monkeypatch, tmp_path):
    _solve_cartpole(method, capsys, monkeypatch, tmp_path)


def test_every_new_method_is_registered_and_has_a_cartpole_test():
    assert set(NEW) <= set(methods.NAMES) and set(CARTPOLE) == set(NEW)


# -- determinism: the same seed gives the same output (apart from elapsed times) -----------------

@pytest.mark.parametrize("method", NEW)
def test_method_is_deterministic_on_cartpole(method, capsys, monkeypatch, tmp_path):
    skip_without_extra(method)
    params = {"stop_when_solved": False, "hidden": [8]}
    budget = 200 if method == "neuromod_island" else 60  # two generations or more (islands: 4 x 18 a generation)
    if method == "ppo":
        params.update(n_envs=2, n_steps=64)
        budget = 20  # 100 training episodes
    runs = [without_time(run_inprocess(capsys, monkeypatch, tmp_path / str(i),
                                       ["--method", method, "--max-evals", budget, "--seed", 4, "--workers", 1], params))
            for i in range(2)]
    assert runs[0] == runs[1]
    assert len(gen_lines("\n".join(runs[0]))) >= 2


@pytest.mark.parametrize("method", NEW)
def test_method_is_deterministic_on_sphere(method, capsys, monkeypatch, tmp_path):
    skip_without_extra(method)
    params = {"stop_when_solved": False, "dim": 4}
    if method == "ppo":
        params.update(n_steps=8, n_envs=4, batch_size=32)
    runs = [without_time(run_inprocess(capsys, monkeypatch, tmp_path / str(i),
                                       ["--method", method, "--env", "sphere", "--max-evals", 200, "--seed", 9],
                                       params)) for i in range(2)]
    assert runs[0] == runs[1]


def test_neuromod_curve_does_not_depend_on_the_number_of_workers(tmp_path):
    outs = []
    for workers in (1, 2):
        p = run_script(["--method", "neuromod_cma_es", "--max-evals", 120, "--seed", 5, "--workers", workers],
                       params={"stop_when_solved": False, "pop_size": 60, "hidden": [8]}, out_dir=tmp_path / str(workers))
        assert p.returncode == 0, p.stderr
        outs.append([line for line in without_time(p.stdout) if not line.startswith('@gaia {"status"')])
    assert outs[0] == outs[1]


# -- neuromodulated plasticity -------------------------------------------------------------------

def test_neuromod_with_plasticity_off_is_the_plain_mlp():
    rng = np.random.default_rng(0)
    pol, mlp = NeuromodPolicy(4, spaces.Discrete(3), [6]), MLPPolicy(4, spaces.Discrete(3), [6])
    assert pol.n_params == mlp.n_params + (4 * 6 + 6 * 3) + 6 + 1
    w = rng.standard_normal((2, mlp.n_params))
    theta = np.concatenate([w, np.zeros((2, pol.n_params - mlp.n_params))], axis=1)
    layers, state = pol.unpack(theta), None
    state = pol.begin(layers, 2, 3)
    for _ in range(4):
        obs = rng.standard_normal((2, 3, 4))
        np.testing.assert_array_equal(pol.act(layers, obs, state), mlp.act(mlp.unpack(w), obs))


def reference_neuromod(theta, sizes, observations):
    """Per-step loop over one candidate and one episode, written from the docstring's equations."""
    pos, Ws, bs, alphas = 0, [], [], []
    for i, o in zip(sizes[:-1], sizes[1:]):
        Ws.append(theta[pos:pos + i * o].reshape(i, o)); pos += i * o
        bs.append(theta[pos:pos + o]); pos += o
    for i, o in zip(sizes[:-1], sizes[1:]):
        alphas.append(theta[pos:pos + i * o].reshape(i, o)); pos += i * o
    w_m, b_m = theta[pos:pos + sizes[-2]], theta[pos + sizes[-2]]
    hebb = [np.zeros_like(W) for W in Ws]
    outputs = []
    for x in observations:
        h, ins, ys = x, [], []
        for j, (W, b, a, H) in enumerate(zip(Ws, bs, alphas, hebb)):
            z = h @ W + b + h @ (a * H)
            ins.append(h)
            ys.append(np.tanh(z))
            h = np.tanh(z) if j < len(Ws) - 1 else z
            if j == len(Ws) - 2 or len(Ws) == 1:
                h_last = np.tanh(z) if len(Ws) > 1 else x
        m = np.tanh(h_last @ w_m + b_m)
        for H, xi, yo in zip(hebb, ins, ys):
            H += m * np.outer(xi, yo)
            np.clip(H, -1, 1, out=H)
        outputs.append(h)
    return np.array(outputs)


def test_neuromod_hebbian_rule_matches_the_documented_equations():
    rng = np.random.default_rng(1)
    space = spaces.Box(-1.0, 1.0, (2,))
    pol = NeuromodPolicy(3, space, [5])
    theta = rng.standard_normal((1, pol.n_params)) * 0.8
    obs = rng.standard_normal((6, 3))
    layers = pol.unpack(theta)
    state = pol.begin(layers, 1, 1)
    got = [pol.act(layers, o[None, None, :], state)[0, 0] for o in obs]
    ref = reference_neuromod(theta[0], pol.sizes, obs)
    np.testing.assert_allclose(got, space.low + (np.tanh(ref) + 1) / 2 * (space.high - space.low), rtol=1e-10)
    assert np.abs(state[0]).max() > 0  # it did learn within the episode


def test_neuromod_traces_start_fresh_each_episode():
    runner = EpisodeRunner(GymConfig("CartPole-v1", (6,), policy="neuromod", backend="scalar"))
    theta = np.random.default_rng(2).standard_normal((2, runner.n_params)) * 0.5
    np.testing.assert_array_equal(runner.returns(theta, [1, 2]), runner.returns(theta, [1, 2]))
    vec = EpisodeRunner(GymConfig("CartPole-v1", (6,), policy="neuromod", backend="vector"))
    np.testing.assert_array_equal(vec.returns(theta, [1, 2]), runner.returns(theta, [1, 2]))


# -- curriculum ------------------------------------------------------------------------------------

@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "MountainCarContinuous-v0", "Pendulum-v1"])
def test_difficulty_one_is_the_target_env_and_zero_is_easier(env_id):
    import gymnasium as gym

    target = gym.make(env_id).unwrapped
    diff = curriculum.EnvDifficulty(env_id, target)
    names = set(diff.curriculum.settings(0.0, diff.base))
    before = {k: getattr(target, k) for k in names}
    diff.apply(target, 0.0)
    assert all(getattr(target, k) != before[k] for k in names), "difficulty 0 changes nothing"
    diff.apply(target, 1.0)
    assert {k: getattr(target, k) for k in names} == before


def test_cartpole_difficulty_is_the_same_on_vector_and_scalar_envs():
    thetas = np.random.default_rng(3).standard_normal((4, 4 * 8 + 8 + 8 * 2 + 2)) * 0.5
    scalar = EpisodeRunner(GymConfig("CartPole-v1", (8,), backend="scalar"))
    vector = EpisodeRunner(GymConfig("CartPole-v1", (8,), backend="vector"))
    for d in (0.0, 0.5, 1.0):
        np.testing.assert_array_equal(scalar.returns(thetas, [5, 6], d), vector.returns(thetas, [5, 6], d))
    assert not np.array_equal(scalar.returns(thetas, [5, 6], 0.0), scalar.returns(thetas, [5, 6], 1.0))
    np.testing.assert_array_equal(scalar.returns(thetas, [5, 6], 1.0), scalar.returns(thetas, [5, 6]))


def test_bipedal_walker_curriculum_shortens_episodes_and_scales_the_level_threshold():
    cur = curriculum.lookup("BipedalWalkerHardcore-v3")
    assert cur.max_steps(0.0, 2000) == 500 and cur.max_steps(1.0, 2000) == 2000
    assert cur.advance_at(0.0, 300.0) == 75.0 and cur.advance_at(1.0, 300.0) == 300.0
    assert cur.settings(0.4, {"hardcore": True}) == {"hardcore": False}
    assert cur.settings(0.5, {"hardcore": True}) == {"hardcore": True}


def test_curriculum_raises_difficulty_and_only_target_fitness_is_best_ever(capsys, monkeypatch, tmp_path):
    out = run_inprocess(capsys, monkeypatch, tmp_path, ["--method", "curriculum_cma_es", "--env", "rastrigin",
                                                        "--max-evals", 3000, "--seed", 3],
                        {"dim": 5, "stop_when_solved": False})
    gens = [parse_line(line)["metrics"] for line in gen_lines(out)]
    levels = [g["difficulty"] for g in gens]
    assert levels[0] == 0.0 and levels[-1] == 1.0 and levels == sorted(levels)
    assert len(set(levels)) == 5  # 0, 0.25, 0.5, 0.75, 1
    # at difficulty 0 (the sphere) the population's best is better than the target's best-ever
    assert gens[0]["best"] > gens[0]["best_ever"]
    csv_header = (tmp_path / "curve.csv").read_text().splitlines()[0]
    assert csv_header.endswith(",elapsed,difficulty")
    final = final_of(out)
    assert final["best_ever"] == pytest.approx(final["mean"])  # best-ever is a target (d = 1) value


def test_curriculum_refuses_envs_without_a_difficulty():
    p = run_script(["--method", "curriculum_cma_es", "--env", "MountainCar-v0", "--max-evals", 10])
    assert p.returncode == 2 and "curriculum_cma_es defines difficulty for" in p.stderr


# -- islands ------------------------------------------------------------------------------------------

def test_island_topologies():
    from gaia_exp.methods._islands import sources

    assert [sources(i, 4, "ring") for i in range(4)] == [[3], [0], [1], [2]]
    assert [sources(i, 3, "full") for i in range(3)] == [[1, 2], [0, 2], [0, 1]]
    assert sources(0, 1, "full") == []


def test_fully_connected_islands_receive_every_other_islands_best():
    from gaia_exp.methods import island_model

    k, pop, gens = 3, 6, 3
    run = RecordingRun(np.full(4, 0.5), neg_sphere, max_evals=k * pop * gens, seed=11)
    island_model.run(run, {"n_islands": k, "pop_size": pop, "sigma0": 0.5, "migration_interval": 1,
                           "topology": "full"})
    first = [X.reshape(k, pop, -1) for X in run.batches[:2]]
    fits = run.fitnesses[0].reshape(k, pop)
    best = [first[0][i][int(np.argmax(fits[i]))] for i in range(k)]
    for i in range(k):  # generation 2 of island i starts with the two other islands' bests
        received = first[1][i][:2]
        expected = [best[j] for j in range(k) if j != i]
        np.testing.assert_allclose(np.sort(received, axis=0), np.sort(np.array(expected), axis=0), atol=1e-12)


# -- forward-forward -----------------------------------------------------------------------------

def test_forward_forward_separates_positive_from_negative_data_and_leaves_the_output_layer():
    from gaia_exp.methods.hybrid_cma_ff import ff_update, layer_views

    rng = np.random.default_rng(4)
    sizes = [3, 8, 2]
    theta = rng.standard_normal(3 * 8 + 8 + 8 * 2 + 2) * 0.3
    pos = rng.standard_normal((200, 3)) + np.array([2.0, 0, 0])
    neg = rng.standard_normal((200, 3)) - np.array([2.0, 0, 0])
    new, loss0 = ff_update(theta, sizes, pos, neg, steps=200, lr=0.1, threshold=0.5)
    _, loss1 = ff_update(new, sizes, pos, neg, steps=1, lr=0.0, threshold=0.5)
    assert loss1 < 0.5 * loss0, (loss0, loss1)
    (W, b), (W2, b2) = layer_views(new, sizes)
    goodness = lambda x: np.sum(np.tanh(x @ W + b) ** 2, axis=1)  # noqa: E731
    assert goodness(pos).mean() > 4 > goodness(neg).mean()  # theta = 0.5 x 8 units
    old_out = layer_views(theta, sizes)[1]
    np.testing.assert_array_equal(W2, old_out[0])
    np.testing.assert_array_equal(b2, old_out[1])


def test_hybrid_reports_the_ff_loss(capsys, monkeypatch, tmp_path):
    out = run_inprocess(capsys, monkeypatch, tmp_path, ["--method", "hybrid_cma_ff", "--max-evals", 100, "--seed", 1,
                                                        "--workers", 1], {"stop_when_solved": False})
    gens = [parse_line(line)["metrics"] for line in gen_lines(out)]
    assert all(np.isfinite(g["ff_loss"]) for g in gens)
    # pop 18 + 2 rollouts per generation; the last one, with no room for the rollouts, has none
    assert [g["evals"] for g in gens] == [20, 40, 60, 80, 98]


# -- indirect encoding ---------------------------------------------------------------------------

def test_cppn_substrate_follows_the_flat_layout():
    from gaia_exp.methods.indirect_encoding import substrate

    sizes = [2, 3, 1]
    coords, channel = substrate(sizes, None)
    assert coords.shape == (2 * 3 + 3 + 3 * 1 + 1, 6) and channel.tolist() == [0] * 6 + [1] * 3 + [0] * 3 + [1]
    # W1[i, j] (row-major) connects input i (x = -1, 1) at y = -1 to hidden j (x = -1, 0, 1) at y = 0
    np.testing.assert_array_equal(coords[1, :4], [-1.0, -1.0, 0.0, 0.0])
    np.testing.assert_array_equal(coords[3, :4], [1.0, -1.0, -1.0, 0.0])
    np.testing.assert_array_equal(coords[7, :4], [0.0, -1.0, 0.0, 0.0])  # bias of hidden neuron 1
    np.testing.assert_array_equal(coords[-1, :4], [0.0, 0.0, 0.0, 1.0])  # bias of the output


def test_cppn_zero_genome_draws_the_start_point_and_the_threshold_prunes():
    from gaia_exp.methods.indirect_encoding import genome_size, phenotypes, substrate

    params = {"cppn_hidden": 4, "expression_threshold": 0.2, "weight_scale": 3.0}
    coords, channel = substrate([4, 5, 2], None)
    x0 = np.linspace(-1, 1, len(coords))
    np.testing.assert_array_equal(phenotypes(np.zeros((1, genome_size(4))), coords, channel, x0, params)[0], x0)
    g = np.random.default_rng(5).standard_normal((3, genome_size(4)))
    w = phenotypes(g, coords, channel, np.zeros(len(coords)), params)
    assert w.shape == (3, len(coords)) and (w == 0).any() and (w != 0).any()
    assert np.abs(w[w != 0]).min() > 0


# -- ppo -----------------------------------------------------------------------------------------

def test_ppo_actor_vector_acts_like_stable_baselines3():
    skip_without_extra("ppo")
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO

    from gaia_exp.methods.ppo import actor_vector
    from gaia_exp.policy import make_policy

    for env_id in ("CartPole-v1", "MountainCarContinuous-v0"):
        env = gym.make(env_id)
        model = PPO("MlpPolicy", env, seed=1, device="cpu",
                    policy_kwargs={"net_arch": {"pi": [7], "vf": [7]}, "activation_fn": torch.nn.Tanh})
        with torch.no_grad():  # a non-trivial actor
            for p in model.policy.parameters():
                p.add_(torch.randn_like(p) * 0.5)
        pol = make_policy("mlp_clip", env.observation_space.shape[0], env.action_space, [7])
        obs = np.random.default_rng(6).standard_normal((50, env.observation_space.shape[0])).astype(np.float32)
        ours = pol.act(pol.unpack(actor_vector(model.policy)[None, :]), obs[None].astype(np.float64))[0]
        theirs, _ = model.predict(obs, deterministic=True)
        np.testing.assert_allclose(np.asarray(ours, dtype=np.float64).reshape(theirs.shape), theirs, atol=1e-5)


def test_ppo_without_its_extra_is_a_clear_error(tmp_path):
    (tmp_path / "stable_baselines3").mkdir()
    (tmp_path / "stable_baselines3" / "__init__.py").write_text("raise ImportError('hidden for the test')\n")
    p = run_script(["--method", "ppo", "--max-evals", 10], env_extra={"PYTHONPATH": str(tmp_path)})
    assert p.returncode == 2 and p.stdout == ""
    assert "--method ppo needs stable-baselines3 and PyTorch" in p.stderr and "requirements-ppo.txt" in p.stderr


def test_ppo_counts_evals_in_episodes_per_eval(capsys, monkeypatch, tmp_path):
    skip_without_extra("ppo")
    out = run_inprocess(capsys, monkeypatch, tmp_path, ["--method", "ppo", "--max-evals", 30, "--seed", 2,
                                                        "--workers", 1],
                        {"stop_when_solved": False, "n_envs": 2, "n_steps": 64})
    gens = [parse_line(line)["metrics"] for line in gen_lines(out)]
    assert all(g["evals"] == g["episodes"] // 5 for g in gens)
    assert gens[-1]["episodes"] == 150 and final_of(out)["evals"] == 30  # the budget: 30 x 5 episodes


def test_ppo_installs_its_extra_in_a_workers_venv(monkeypatch, tmp_path, capsys):
    """In the venv a GAIA worker built (its stamp file is there), the first ppo job installs
    requirements-ppo.txt with this Python's pip, under a lock, and says so in a status line."""
    import subprocess
    import sys

    from gaia_exp.methods import ppo

    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    assert not ppo.in_worker_venv()
    (tmp_path / ppo.WORKER_VENV_STAMP).write_text("abc\n")
    assert ppo.in_worker_venv()
    installed = []
    monkeypatch.setattr(ppo, "_have_sb3", lambda: bool(installed))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: installed.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", ""))
    ppo.check(None, {})
    assert installed == [[sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r",
                          str(EXPERIMENTS_DIR / "requirements-ppo.txt")]]
    assert (tmp_path / "gaia-ppo-install.lock").exists()
    line = capsys.readouterr().out.strip()
    assert parse_line(line)["json"]["status"].startswith("installing the ppo extra")
    # a failing install is an error with pip's message
    installed.clear()
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "no space left"))
    with pytest.raises(Exception, match="no space left"):
        ppo.check(None, {})
