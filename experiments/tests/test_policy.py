"""The MLP policy: flat parameter layout, hidden sizes, argmax (Discrete) and tanh-scaled (Box) actions."""

import numpy as np
import pytest
from gymnasium import spaces

from gaia_exp.evaluation import EpisodeRunner, GymConfig
from gaia_exp.policy import MLPPolicy


def pack(layers):
    """The documented flat layout: per layer W (in x out, row-major) then b (out)."""
    return np.concatenate([np.concatenate([W.ravel(), b.ravel()]) for W, b in layers])


def random_layers(sizes, rng):
    return [(rng.standard_normal((i, o)), rng.standard_normal(o)) for i, o in zip(sizes[:-1], sizes[1:])]


def reference_outputs(layers, obs):
    """Plain per-observation forward pass: tanh hidden layers, linear output."""
    h = np.asarray(obs, dtype=np.float64)
    for j, (W, b) in enumerate(layers):
        h = h @ W + b
        if j < len(layers) - 1:
            h = np.tanh(h)
    return h


@pytest.mark.parametrize("hidden", [[], [5], [7, 3], [32, 32]])
def test_flat_vector_round_trips_into_layers(hidden):
    policy = MLPPolicy(4, spaces.Discrete(3), hidden)
    assert policy.sizes == [4, *hidden, 3]
    rng = np.random.default_rng(0)
    layers = random_layers(policy.sizes, rng)
    theta = pack(layers)
    assert policy.n_params == theta.size == sum(i * o + o for i, o in zip(policy.sizes[:-1], policy.sizes[1:]))
    unpacked = policy.unpack(theta[None, :])
    assert len(unpacked) == len(layers)
    for (W, b), (uW, ub) in zip(layers, unpacked):
        assert uW.shape == (1, *W.shape) and ub.shape == (1, 1, W.shape[1])
        np.testing.assert_array_equal(uW[0], W)
        np.testing.assert_array_equal(ub[0, 0], b)
    # and back: re-packing the unpacked layers gives the same flat vector
    np.testing.assert_array_equal(pack([(W[0], b[0, 0]) for W, b in unpacked]), theta)


def test_unpack_keeps_candidates_apart_and_rejects_bad_shapes():
    policy = MLPPolicy(3, spaces.Discrete(2), [4])
    thetas = np.random.default_rng(1).standard_normal((3, policy.n_params))
    W1, b1 = policy.unpack(thetas)[0]
    np.testing.assert_array_equal(W1[2].ravel(), thetas[2, :12])
    np.testing.assert_array_equal(b1[2, 0], thetas[2, 12:16])
    with pytest.raises(ValueError, match="shape"):
        policy.unpack(thetas[:, :-1])
    with pytest.raises(ValueError, match="shape"):
        policy.unpack(thetas[0])


def test_hidden_sizes_from_params_reach_the_policy():
    runner = EpisodeRunner(GymConfig("Pendulum-v1", (32, 32)))
    assert runner.policy.sizes == [3, 32, 32, 1]
    assert runner.n_params == 3 * 32 + 32 + 32 * 32 + 32 + 32 * 1 + 1
    runner = EpisodeRunner(GymConfig("CartPole-v1", (8,)))
    assert runner.policy.sizes == [4, 8, 2] and runner.n_params == 4 * 8 + 8 + 8 * 2 + 2


def test_discrete_actions_are_the_argmax_of_the_outputs():
    policy = MLPPolicy(4, spaces.Discrete(5), [6, 3])
    assert policy.discrete
    rng = np.random.default_rng(2)
    n, K = 3, 7
    layers = [random_layers(policy.sizes, rng) for _ in range(n)]
    thetas = np.stack([pack(ls) for ls in layers])
    obs = rng.standard_normal((n, K, 4))
    acts = policy.act(policy.unpack(thetas), obs)
    assert acts.shape == (n, K) and np.issubdtype(acts.dtype, np.integer)
    for c in range(n):  # each candidate with its own weights
        expected = reference_outputs(layers[c], obs[c]).argmax(axis=-1)
        np.testing.assert_array_equal(acts[c], expected)
    assert len(np.unique(acts)) > 1  # not trivially constant


@pytest.mark.parametrize("k", [0, 1, 2])
def test_discrete_action_follows_the_largest_output(k):
    policy = MLPPolicy(2, spaces.Discrete(3), [4])
    layers = [(np.zeros((2, 4)), np.zeros(4)), (np.zeros((4, 3)), np.zeros(3))]
    layers[1][1][k] = 1.0  # output k always the largest, whatever the observation
    obs = np.random.default_rng(3).standard_normal((1, 10, 2)) * 5
    assert (policy.act(policy.unpack(pack(layers)[None, :]), obs) == k).all()


def test_continuous_actions_are_tanh_scaled_into_the_bounds():
    box = spaces.Box(low=np.array([-2.0, 0.0, 5.0]), high=np.array([2.0, 10.0, 6.0]), dtype=np.float64)
    policy = MLPPolicy(3, box, [8])
    assert not policy.discrete
    rng = np.random.default_rng(4)
    n, K = 4, 6
    layers = [random_layers(policy.sizes, rng) for _ in range(n)]
    thetas = np.stack([pack(ls) for ls in layers]) * 3  # large weights: outputs far into tanh's tails
    obs = rng.standard_normal((n, K, 3)) * 3
    acts = policy.act(policy.unpack(thetas), obs)
    assert acts.shape == (n, K, 3)
    assert (acts >= box.low).all() and (acts <= box.high).all()
    for c in range(n):
        out = reference_outputs([(W * 3, b * 3) for W, b in layers[c]], obs[c])
        expected = box.low + (np.tanh(out) + 1.0) / 2.0 * (box.high - box.low)
        np.testing.assert_allclose(acts[c], expected, rtol=1e-12, atol=1e-12)
    # the range is used, not just a corner of it
    span = acts.reshape(-1, 3).max(axis=0) - acts.reshape(-1, 3).min(axis=0)
    assert (span > 0.5 * (box.high - box.low)).all()


def test_continuous_zero_output_is_the_middle_and_saturation_stays_in_bounds():
    box = spaces.Box(low=-2.0, high=2.0, shape=(1,), dtype=np.float32)  # Pendulum's torque
    policy = MLPPolicy(3, box, [4])
    obs = np.random.default_rng(5).standard_normal((1, 5, 3))
    zero = policy.act(policy.unpack(np.zeros((1, policy.n_params))), obs)
    np.testing.assert_array_equal(zero, np.zeros((1, 5, 1)))  # (low + high) / 2
    for sign in (1.0, -1.0):
        layers = [(np.zeros((3, 4)), np.zeros(4)), (np.zeros((4, 1)), np.array([sign * 1e6]))]
        acts = policy.act(policy.unpack(pack(layers)[None, :]), obs)
        np.testing.assert_array_equal(acts, np.full((1, 5, 1), 2.0 * sign))
    assert box.contains(acts[0, 0].astype(np.float32))


def test_runner_uses_the_policy_actions_in_the_env():
    """MountainCarContinuous charges -0.1·a² per step on the *unclipped* action: a policy saturated
    at the high bound pays exactly 0.1 per step (more if it overshot the bound)."""
    runner = EpisodeRunner(GymConfig("MountainCarContinuous-v0", (4,), max_episode_steps=50))
    pol = runner.policy
    assert pol.low.tolist() == [-1.0] and pol.high.tolist() == [1.0]
    layers = [(np.zeros((2, 4)), np.zeros(4)), (np.zeros((4, 1)), np.array([1e6]))]
    r = runner.returns(pack(layers)[None, :], [1, 2])
    np.testing.assert_allclose(r, -0.1 * 50, rtol=1e-9)  # a = exactly the high bound, every step
