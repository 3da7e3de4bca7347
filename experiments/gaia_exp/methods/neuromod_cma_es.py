"""CMA-ES over a plastic policy: the initial weights *and* a neuromodulated Hebbian rule.

Each candidate is a ``NeuromodPolicy`` (gaia_exp/policy.py): a tanh MLP whose connections also
carry per-connection plasticity coefficients alpha and a Hebbian trace that starts at zero every
episode and changes at every step by M(t) x y^T, where M(t) = tanh(h w_M + b_M) is a
neuromodulatory output the network computes from its own last hidden layer. So an agent keeps
learning *within* an episode, and evolution searches how: CMA-ES (pycma, restarted from the
best-ever point when its termination criteria fire, as ``cma_es``) optimises the initial weights,
alpha and the modulator's weights together, all in one flat vector (layout in ``result.json``
under ``policy``). The start point is zeros: the plain MLP with plasticity switched off.

Sources: Miconi, Clune & Stanley, "Differentiable plasticity: training plastic neural networks
with backpropagation", ICML 2018 (plastic connections w + alpha * Hebb); Miconi, Rawal, Clune &
Stanley, "Backpropamine: training self-modifying neural networks with differentiable
neuromodulated plasticity", ICLR 2019 (the network's own neuromodulatory output M(t) gates the
Hebbian update); Doya, "Metalearning and neuromodulation", Neural Networks 15 (2002)
(neuromodulators as the signals that set when and how a brain learns). Those papers learn the
plasticity by gradient descent; here it is evolved, and the update is the feedforward
adaptation described in NeuromodPolicy's docstring.

On an analytic objective (sphere, rastrigin) there is no network: the method is plain CMA-ES.
Params: ``pop_size`` (null: pycma's 4 + 3 ln n), ``sigma0``. σ in the Gen line is pycma's.
"""

from __future__ import annotations

from ..params import Param
from ._cma import run_cma

POLICY = "neuromod"

PARAMS = (
    Param("pop_size", None, "opt_int", "population size (null: pycma's default 4 + 3 ln(n))", 2),
    Param("sigma0", 0.5, "float", "initial step size (weights, plasticity coefficients and modulator alike)", 1e-12),
)


def run(run, params: dict) -> None:
    """CMA-ES over the plastic policy's genome until the Run's budget is spent."""
    run_cma(run, params, "neuromod_cma_es")
