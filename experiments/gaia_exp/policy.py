"""Small numpy policies whose parameters are one flat vector.

``MLPPolicy`` (kind ``mlp``): obs -> hidden... (tanh) -> outputs. Discrete actions take the argmax
of the outputs; continuous (Box) actions are ``low + (tanh(out) + 1) / 2 * (high - low)``
(kind ``mlp_clip``: ``clip(out, low, high)`` instead, the deterministic action of a Gaussian
policy as stable-baselines3 computes it, so a PPO actor runs here unchanged).
The flat layout is, layer by layer, the weight matrix (in x out, row-major) then the bias (out).

``NeuromodPolicy`` (kind ``neuromod``): the same MLP whose weights also change within an episode
by a Hebbian rule gated by a neuromodulatory output (see its docstring).

The forward pass is batched over candidates *and* episodes: ``obs`` has shape (n, K, obs_dim)
and each of the n candidates uses its own weights (one batched matmul per layer). A policy with
state (the Hebbian traces) gets it from ``begin`` at the start of the episodes and updates it in
``act``; the MLP has none.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


class MLPPolicy:
    kind = "mlp"

    def __init__(self, obs_dim: int, action_space, hidden: Sequence[int], clip_actions: bool = False):
        from gymnasium import spaces

        self.discrete = isinstance(action_space, spaces.Discrete)
        if self.discrete:
            out_dim = int(action_space.n)
            self.low = self.high = None
        else:
            out_dim = int(np.prod(action_space.shape))
            self.low = np.asarray(action_space.low, dtype=np.float64).reshape(-1)
            self.high = np.asarray(action_space.high, dtype=np.float64).reshape(-1)
        self.sizes = [int(obs_dim), *[int(h) for h in hidden], out_dim]
        self.n_params = sum(i * o + o for i, o in zip(self.sizes[:-1], self.sizes[1:]))
        self.clip_actions = bool(clip_actions)
        if self.clip_actions:
            self.kind = "mlp_clip"

    @property
    def n_weights(self) -> int:
        """Parameters of the plain MLP (the first ones of the flat vector)."""
        return sum(i * o + o for i, o in zip(self.sizes[:-1], self.sizes[1:]))

    def begin(self, layers, n: int, K: int):
        """State at the start of n x K episodes (none for a plain MLP)."""
        return None

    def _actions(self, h: np.ndarray) -> np.ndarray:
        if self.discrete:
            return h.argmax(axis=-1)
        if self.clip_actions:
            return np.clip(h, self.low, self.high)
        return self.low + (np.tanh(h) + 1.0) * 0.5 * (self.high - self.low)

    def unpack(self, thetas: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Split (n, n_params) flat vectors into per-layer (W (n,in,out), b (n,1,out)) views."""
        thetas = np.asarray(thetas, dtype=np.float64)
        if thetas.ndim != 2 or thetas.shape[1] != self.n_params:
            raise ValueError(f"expected thetas of shape (n, {self.n_params}), got {thetas.shape}")
        n = thetas.shape[0]
        layers, pos = [], 0
        for i, o in zip(self.sizes[:-1], self.sizes[1:]):
            W = thetas[:, pos:pos + i * o].reshape(n, i, o)
            pos += i * o
            b = thetas[:, pos:pos + o].reshape(n, 1, o)
            pos += o
            layers.append((W, b))
        return layers

    def act(self, layers, obs: np.ndarray, state=None) -> np.ndarray:
        """Actions for obs of shape (n, K, obs_dim): (n, K) ints or (n, K, act_dim) floats."""
        h = obs
        last = len(layers) - 1
        for j, (W, b) in enumerate(layers):
            h = np.matmul(h, W)
            h += b
            if j < last:
                np.tanh(h, out=h)
        return self._actions(h)

    def describe(self) -> dict:
        out = {"kind": self.kind, "layer_sizes": self.sizes, "activation": "tanh", "discrete": self.discrete,
               "layout": "per layer: W (in x out, row-major) then b (out)"}
        if not self.discrete:
            out["actions"] = ("clip(out, low, high)" if self.clip_actions
                              else "low + (tanh(out) + 1) / 2 * (high - low)")
        return out


class NeuromodPolicy(MLPPolicy):
    """The MLP with neuromodulated Hebbian plasticity: it learns within an episode.

    Written from the published descriptions of differentiable plasticity (Miconi, Clune &
    Stanley, "Differentiable plasticity: training plastic neural networks with backpropagation",
    ICML 2018) and its neuromodulated form (Miconi, Rawal, Clune & Stanley, "Backpropamine:
    training self-modifying neural networks with differentiable neuromodulated plasticity",
    ICLR 2019), with neuromodulation as a signal that gates learning (Doya, "Metalearning and
    neuromodulation", Neural Networks 15, 2002). Those papers train the plasticity parameters by
    backpropagation; here evolution (CMA-ES) searches them together with the initial weights.

    Every layer l (input x_l, output y_l) has fixed weights W_l, b_l, per-connection plasticity
    coefficients alpha_l (in x out) and a Hebbian trace Hebb_l that starts at 0 each episode:

        z_l = x_l W_l + b_l + x_l (alpha_l * Hebb_l)      (* elementwise)
        y_l = tanh(z_l) for hidden layers; z_l are the outputs of the last layer
        M(t) = tanh(h_last w_M + b_M)                       (the neuromodulatory output)
        Hebb_l <- clip(Hebb_l + M(t) * outer(x_l, tanh(z_l)), -1, 1)

    where h_last is the last hidden layer's activity (the observation when there is no hidden
    layer). The action at step t uses the weights before that step's update. M(t) is one scalar
    per episode step, computed by the network itself from what it sees: it decides when and in
    which direction (M < 0 reverses the Hebbian sign) the network learns.

    Flat layout: the MLP's (per layer W then b), then per layer alpha (in x out, row-major), then
    w_M (size of h_last) and b_M. With zeros for alpha, w_M and b_M it is the plain MLP.
    """

    kind = "neuromod"

    def __init__(self, obs_dim: int, action_space, hidden: Sequence[int]):
        super().__init__(obs_dim, action_space, hidden)
        self.kind = "neuromod"
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        self.n_alpha = sum(i * o for i, o in pairs)
        self.mod_in = self.sizes[-2]
        self.n_params = self.n_weights + self.n_alpha + self.mod_in + 1

    def unpack(self, thetas: np.ndarray):
        """(layers, alphas, (w_M (n, mod_in, 1), b_M (n, 1, 1)))."""
        thetas = np.asarray(thetas, dtype=np.float64)
        if thetas.ndim != 2 or thetas.shape[1] != self.n_params:
            raise ValueError(f"expected thetas of shape (n, {self.n_params}), got {thetas.shape}")
        n = thetas.shape[0]
        layers = MLPPolicy.unpack(self._as_mlp(), thetas[:, :self.n_weights])
        alphas, pos = [], self.n_weights
        for i, o in zip(self.sizes[:-1], self.sizes[1:]):
            alphas.append(thetas[:, pos:pos + i * o].reshape(n, i, o))
            pos += i * o
        w_m = thetas[:, pos:pos + self.mod_in].reshape(n, self.mod_in, 1)
        b_m = thetas[:, pos + self.mod_in:pos + self.mod_in + 1].reshape(n, 1, 1)
        return layers, alphas, (w_m, b_m)

    def _as_mlp(self) -> MLPPolicy:
        view = MLPPolicy.__new__(MLPPolicy)
        view.sizes, view.n_params = self.sizes, self.n_weights
        return view

    def begin(self, layers, n: int, K: int):
        return [np.zeros((n, K, i, o)) for i, o in zip(self.sizes[:-1], self.sizes[1:])]

    def act(self, layers, obs: np.ndarray, state=None) -> np.ndarray:
        weights, alphas, (w_m, b_m) = layers
        if state is None:
            state = self.begin(layers, obs.shape[0], obs.shape[1])
        h = obs
        last = len(weights) - 1
        ins, outs = [], []
        h_last = obs
        for j, ((W, b), alpha, hebb) in enumerate(zip(weights, alphas, state)):
            z = np.matmul(h, W) + b
            z += np.einsum("nki,nkio->nko", h, alpha[:, None] * hebb)
            ins.append(h)
            y = np.tanh(z)
            outs.append(y)
            if j < last:
                h = y
                h_last = y
            else:
                h = z
        m = np.tanh(np.matmul(h_last, w_m) + b_m)  # (n, K, 1)
        for hebb, x, y in zip(state, ins, outs):
            hebb += m[..., None] * x[..., :, None] * y[..., None, :]
            np.clip(hebb, -1.0, 1.0, out=hebb)
        return self._actions(h)

    def describe(self) -> dict:
        out = super().describe()
        out["layout"] = ("per layer: W (in x out, row-major) then b (out); then per layer alpha (in x out); "
                         "then w_M (last hidden size) and b_M")
        out["plasticity"] = "Hebb <- clip(Hebb + M x y^T, -1, 1), M = tanh(h_last w_M + b_M); z = x W + b + x (alpha*Hebb)"
        return out


POLICIES = ("mlp", "mlp_clip", "neuromod")


def make_policy(kind: str, obs_dim: int, action_space, hidden: Sequence[int]) -> MLPPolicy:
    if kind == "mlp":
        return MLPPolicy(obs_dim, action_space, hidden)
    if kind == "mlp_clip":
        return MLPPolicy(obs_dim, action_space, hidden, clip_actions=True)
    if kind == "neuromod":
        return NeuromodPolicy(obs_dim, action_space, hidden)
    raise ValueError(f"unknown policy kind {kind!r}; known: {', '.join(POLICIES)}")
