"""OpenAI-ES (Salimans et al. 2017): antithetic sampling, centered-rank fitness shaping, Adam.

Each generation samples ``pop_size / 2`` Gaussian directions e and evaluates theta ± sigma·e;
the fitnesses are replaced by centered ranks in [-0.5, 0.5]; the gradient estimate
sum(rank_i · e_i) / (pop_size · sigma), minus ``weight_decay`` · theta, is followed with Adam.
σ in the Gen line is the (fixed) perturbation scale.
"""

from __future__ import annotations

import numpy as np

from ..params import Param

PARAMS = (
    Param("pop_size", 50, "int", "perturbations per generation (even: antithetic pairs)", 2),
    Param("sigma", 0.1, "float", "perturbation standard deviation", 1e-12),
    Param("lr", 0.03, "float", "Adam learning rate", 0),
    Param("weight_decay", 0.005, "float", "L2 coefficient pulling theta towards 0", 0),
)


def centered_ranks(f: np.ndarray) -> np.ndarray:
    """Ranks of f scaled to [-0.5, 0.5] (ties broken by position); higher fitness -> higher rank."""
    n = f.size
    ranks = np.empty(n)
    ranks[np.argsort(f, kind="stable")] = np.arange(n)
    return ranks / max(n - 1, 1) - 0.5


class Adam:
    def __init__(self, dim: int, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = np.zeros(dim)
        self.v = np.zeros(dim)
        self.t = 0

    def step(self, grad: np.ndarray) -> np.ndarray:
        """The update to *add* for gradient ascent on ``grad``."""
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        a = self.lr * np.sqrt(1 - self.beta2 ** self.t) / (1 - self.beta1 ** self.t)
        return a * self.m / (np.sqrt(self.v) + self.eps)


def run(run, params: dict) -> None:
    """Gradient ascent on the Gaussian-smoothed fitness until the Run's budget is spent."""
    from ..run import method_rng

    pop = int(params["pop_size"])
    if pop % 2:
        pop += 1  # antithetic pairs
    half = pop // 2
    sigma, wd = params["sigma"], params["weight_decay"]
    rng = method_rng(run.seed)
    theta = run.x0.copy()
    adam = Adam(theta.size, params["lr"])
    while run.can_afford(pop):
        eps = rng.standard_normal((half, theta.size))
        X = np.concatenate([theta + sigma * eps, theta - sigma * eps])
        f = run.evaluate(X)
        r = centered_ranks(f)
        grad = (r[:half] - r[half:]) @ eps / (pop * sigma) - wd * theta
        theta = theta + adam.step(grad)
        if run.end_generation(sigma):
            return
