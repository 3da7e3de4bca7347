"""A small numpy MLP policy whose parameters are one flat vector.

Layers: obs -> hidden... (tanh) -> outputs. Discrete actions take the argmax of the outputs;
continuous (Box) actions are ``low + (tanh(out) + 1) / 2 * (high - low)``.
The flat layout is, layer by layer, the weight matrix (in x out, row-major) then the bias (out).

The forward pass is batched over candidates *and* episodes: ``obs`` has shape (n, K, obs_dim)
and each of the n candidates uses its own weights (one batched matmul per layer).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


class MLPPolicy:
    def __init__(self, obs_dim: int, action_space, hidden: Sequence[int]):
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

    def act(self, layers, obs: np.ndarray) -> np.ndarray:
        """Actions for obs of shape (n, K, obs_dim): (n, K) ints or (n, K, act_dim) floats."""
        h = obs
        last = len(layers) - 1
        for j, (W, b) in enumerate(layers):
            h = np.matmul(h, W)
            h += b
            if j < last:
                np.tanh(h, out=h)
        if self.discrete:
            return h.argmax(axis=-1)
        return self.low + (np.tanh(h) + 1.0) * 0.5 * (self.high - self.low)
