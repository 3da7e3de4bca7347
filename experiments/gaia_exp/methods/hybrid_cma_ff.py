"""CMA-ES with forward-forward local updates of the policy's hidden layers between generations.

CMA-ES (pycma, as ``cma_es``) searches the MLP policy's flat weight vector. Every
``ff_interval`` generations the hidden layers of CMA-ES's current mean are also trained by
Hinton's forward-forward algorithm, and the result is injected into the next population (pycma
``inject``): it replaces one sample, so CMA-ES's own selection decides whether the local update
helped. The output layer is never touched by FF (it maps features to actions, which the
goodness objective knows nothing about); CMA-ES alone shapes it.

Forward-forward for a policy (Hinton, "The Forward-Forward Algorithm: Some Preliminary
Investigations", arXiv:2212.13345, 2022): each layer has its own objective and gets no gradient
from the layers above. Here:

- *positive data*: observations visited by the generation's best candidate; *negative data*:
  observations visited by the generation's worst candidate, both collected by running them once
  more on the generation's episodes (2 evals per FF step, counted in the budget; they also count
  for best-ever). "Real data" in Hinton's paper becomes "states that good behaviour leads to",
  and his hand-made negatives become states that bad behaviour leads to.
- *goodness* of hidden layer l for an input: G = sum_j a_j^2 over its tanh activities a, given
  the activities of layer l-1 under the same weights (detached: no gradient flows across layers).
- *objective*, per layer: logistic loss on G - theta with theta = ``ff_threshold`` x (number of
  units): softplus(theta - G) on positive data, softplus(G - theta) on negative data, minimised by
  ``ff_steps`` full-batch gradient steps of size ``ff_lr`` on that layer's W and b only.

Unlike Hinton's networks, the layers are not length-normalised between them: the policy is the
plain tanh MLP that CMA-ES evolves and FF must improve that very network. The Gen line carries
``Ff loss``: the mean FF loss (per layer, before the update) of the last FF step.
On an analytic objective (no network, no states) the FF step is skipped: plain CMA-ES.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..params import Param
from ._cma import run_cma

EXTRA_METRICS = ("ff_loss",)

PARAMS = (
    Param("pop_size", None, "opt_int", "population size (null: pycma's default 4 + 3 ln(n))", 2),
    Param("sigma0", 0.5, "float", "initial step size", 1e-12),
    Param("ff_interval", 1, "int", "generations between forward-forward steps", 1),
    Param("ff_steps", 20, "int", "gradient steps per forward-forward step", 1),
    Param("ff_lr", 0.05, "float", "forward-forward learning rate", 0),
    Param("ff_threshold", 0.5, "float", "goodness threshold per unit (theta = ff_threshold x units)", 0),
    Param("ff_states", 1000, "int", "most observations kept per data set (positive, negative)", 10),
)


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def layer_views(theta: np.ndarray, sizes: list[int]):
    """(W, b) views into a flat MLP vector (per layer W (in x out, row-major) then b)."""
    out, pos = [], 0
    for i, o in zip(sizes[:-1], sizes[1:]):
        W = theta[pos:pos + i * o].reshape(i, o)
        pos += i * o
        b = theta[pos:pos + o]
        pos += o
        out.append((W, b))
    return out


def ff_update(theta: np.ndarray, sizes: list[int], pos: np.ndarray, neg: np.ndarray, *, steps: int, lr: float,
              threshold: float) -> tuple[np.ndarray, float]:
    """Forward-forward training of the hidden layers of a flat MLP vector; returns the updated
    copy and the mean loss before the update (nan if there is no hidden layer or no data)."""
    theta = np.array(theta, dtype=np.float64)
    layers = layer_views(theta, sizes)
    hidden = layers[:-1]
    if not hidden or len(pos) == 0 or len(neg) == 0:
        return theta, math.nan
    losses = []
    for step in range(steps):
        xp, xn = pos, neg
        for li, (W, b) in enumerate(hidden):
            theta_l = threshold * W.shape[1]
            grads = []
            loss = 0.0
            for x, sign in ((xp, 1.0), (xn, -1.0)):
                a = np.tanh(x @ W + b)
                g = np.sum(a * a, axis=1)
                margin = sign * (g - theta_l)  # > 0 when the sample is classified right
                loss += float(np.mean(_softplus(-margin)))
                dl_dg = -sign * _sigmoid(-margin)  # d softplus(-margin) / dG
                dz = (dl_dg[:, None] * 2.0 * a * (1.0 - a * a)) / len(x)
                grads.append((x.T @ dz, dz.sum(axis=0)))
            if step == 0:
                losses.append(loss / 2)
            # next layer's inputs: this layer's activities under the weights before this step
            xp, xn = np.tanh(xp @ W + b), np.tanh(xn @ W + b)
            W -= lr * (grads[0][0] + grads[1][0]) / 2  # views: updates theta in place
            b -= lr * (grads[0][1] + grads[1][1]) / 2
    return theta, float(np.mean(losses))


def run(run, params: dict) -> None:
    """CMA-ES, with forward-forward updates of the mean's hidden layers injected between generations."""
    sizes = run.layer_sizes
    use_ff = sizes is not None and len(sizes) > 2
    state = {"gen": 0, "loss": math.nan}

    def after_tell(es, X, f):
        state["gen"] += 1
        if not use_ff or state["gen"] % params["ff_interval"] or not run.can_afford(2 + es.popsize):
            return
        best, worst = int(np.argmax(f)), int(np.argmin(f))
        _, pos = run.rollout(X[best], max_states=params["ff_states"])
        _, neg = run.rollout(X[worst], max_states=params["ff_states"])
        mean = np.asarray(es.mean, dtype=np.float64)
        updated, state["loss"] = ff_update(mean, sizes, pos, neg, steps=params["ff_steps"], lr=params["ff_lr"],
                                           threshold=params["ff_threshold"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            es.inject([updated], force=True)

    run_cma(run, params, "hybrid_cma_ff", after_tell=after_tell,
            extra=lambda: {"ff_loss": state["loss"]})
