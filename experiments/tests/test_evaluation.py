"""Evaluation: seeds per generation, vector vs scalar backends, pool vs in-process."""

import numpy as np
import pytest

from gaia_exp.evaluation import EpisodeRunner, GymConfig, GymEvaluator
from gaia_exp.run import STREAM_FINAL, STREAM_TRAIN, derive_seeds


@pytest.fixture(scope="module")
def population():
    runner = EpisodeRunner(GymConfig("CartPole-v1", (8,)))
    rng = np.random.default_rng(0)
    return rng.standard_normal((12, runner.n_params)) * 0.7


def test_seeds_reproducible_and_distinct():
    a = derive_seeds(7, STREAM_TRAIN, 1, 5)
    assert a == derive_seeds(7, STREAM_TRAIN, 1, 5)
    assert a != derive_seeds(7, STREAM_TRAIN, 2, 5)
    assert a != derive_seeds(8, STREAM_TRAIN, 1, 5)
    assert a != derive_seeds(7, STREAM_FINAL, 1, 5)
    assert len(set(a)) == 5


def test_same_seeds_same_episodes_for_all_candidates(population):
    runner = EpisodeRunner(GymConfig("CartPole-v1", (8,)))
    twins = np.stack([population[0], population[0], population[0]])
    r = runner.returns(twins, [11, 12, 13])
    assert (r == r[0]).all()
    assert not (runner.returns(twins[:1], [21, 22, 23]) == r[:1]).all()


def test_vector_and_scalar_backends_agree(population):
    seeds = [1, 2, 3, 4]
    vec = EpisodeRunner(GymConfig("CartPole-v1", (8,), backend="vector"))
    sca = EpisodeRunner(GymConfig("CartPole-v1", (8,), backend="scalar"))
    assert vec.vectorized and not sca.vectorized
    np.testing.assert_array_equal(vec.returns(population, seeds), sca.returns(population, seeds))


def test_max_episode_steps_caps_returns(population):
    r = EpisodeRunner(GymConfig("CartPole-v1", (8,), max_episode_steps=20)).returns(population, [1, 2])
    assert r.max() <= 20


@pytest.mark.parametrize("backend, n", [("scalar", 12), ("vector", 200)])
def test_pool_matches_in_process(backend, n, monkeypatch):
    cfg = GymConfig("CartPole-v1", (8,), max_episode_steps=200, backend=backend)
    one = GymEvaluator(cfg, 1)
    two = GymEvaluator(cfg, 2)
    calls = []
    real_map_async = two.pool.map_async
    monkeypatch.setattr(two.pool, "map_async", lambda f, chunks: calls.append(len(chunks)) or real_map_async(f, chunks))
    population = np.random.default_rng(0).standard_normal((n, one.n_params)) * 0.7
    try:
        assert two.pool is not None and one.pool is None
        for seeds in ([5, 6, 7], [8]):
            np.testing.assert_array_equal(one.returns(population, seeds), two.returns(population, seeds))
    finally:
        one.close()
        two.close()
    # scalar envs: always split over the workers; vector env: only batches of >= 2 x 256 episodes
    assert calls == ([2, 2] if backend == "scalar" else [2])


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "MountainCarContinuous-v0", "Acrobot-v1"])
def test_other_envs_scalar_backend(env_id):
    runner = EpisodeRunner(GymConfig(env_id, (4,), max_episode_steps=30))
    thetas = np.random.default_rng(1).standard_normal((3, runner.n_params))
    r = runner.returns(thetas, [1, 2])
    assert r.shape == (3, 2) and np.isfinite(r).all()
    np.testing.assert_array_equal(r, runner.returns(thetas, [1, 2]))
