"""Indirect encoding: CMA-ES evolves a CPPN, and the CPPN draws the policy's weights.

HyperNEAT-style (Stanley, D'Ambrosio & Gauci, "A hypercube-based encoding for evolving
large-scale neural networks", Artificial Life 15(2), 2009), with the compositional pattern
producing network of Stanley, "Compositional pattern producing networks: a novel abstraction of
development", Genetic Programming and Evolvable Machines 8(2), 2007. HyperNEAT evolves the
CPPN's topology with NEAT; here the CPPN has a fixed shape and CMA-ES (pycma) searches its
weights, as in later HyperNEAT variants that evolve only CPPN weights.

Substrate: the policy's neurons are placed on a plane, layer l of L at y = -1 + 2 l / L, the
neurons of a layer spread evenly over x in [-1, 1] (one neuron: x = 0). The weight of the
connection from neuron (x1, y1) to neuron (x2, y2) is the CPPN's first output at
(x1, y1, x2, y2, d = distance, 1); the bias of neuron (x2, y2) is its second output at
(0, y1, x2, y2, d, 1), y1 the previous layer's y.

CPPN: those 6 inputs -> ``cppn_hidden`` units whose activation functions cycle through
sin(z), exp(-z^2) (Gaussian), tanh(z) and z (the pattern-producing functions of the CPPN
papers: symmetry, repetition, smooth variation) -> 2 linear outputs o. HyperNEAT's expression
threshold: a weight is 0 where |o| < ``expression_threshold``, else
``weight_scale`` x sign(o) x (|o| - threshold). The genome is the CPPN's weights and biases
(9 x cppn_hidden + 2 numbers; 74 with 8 units), whatever the size of the policy, which is what
makes the encoding indirect. The policy is ``x0 + pattern`` (x0 is zeros for gym envs).

On an analytic objective the "substrate" is the vector itself: component i of n sits at
(x = -1 + 2 i / (n - 1), y = 1), drawn from a source at (0, -1).
The Run sees the policy's weights (the phenotype): best_params.npy holds them, not the CPPN.
Params: ``pop_size``, ``sigma0`` (in CPPN-weight space), ``cppn_hidden``,
``expression_threshold``, ``weight_scale``.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from ..params import Param
from ._cma import make_es, stop_reasons

PARAMS = (
    Param("pop_size", None, "opt_int", "population size (null: pycma's default 4 + 3 ln(n) of the CPPN's size)", 2),
    Param("sigma0", 0.5, "float", "initial step size of the CPPN weights", 1e-12),
    Param("cppn_hidden", 8, "int", "hidden units of the CPPN (activations cycle sin, Gaussian, tanh, linear)", 1),
    Param("expression_threshold", 0.2, "float", "CPPN outputs with |o| below this give weight 0 (HyperNEAT)", 0),
    Param("weight_scale", 3.0, "float", "weight = weight_scale x sign(o) x (|o| - threshold)", 1e-12),
)

N_INPUTS = 6  # x1, y1, x2, y2, distance, bias


def _positions(n: int) -> np.ndarray:
    return np.zeros(1) if n == 1 else np.linspace(-1.0, 1.0, n)


def substrate(layer_sizes: list[int] | None, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(coordinates (P, 6), channel (P,) 0 = weight / 1 = bias) of every policy parameter, in the
    flat vector's order (per layer W (in x out, row-major) then b)."""
    if layer_sizes is None:  # analytic: the vector itself
        x2 = _positions(dim)
        coords = np.stack([np.zeros(dim), -np.ones(dim), x2, np.ones(dim)], axis=1)
        channel = np.zeros(dim, dtype=int)
    else:
        L = len(layer_sizes) - 1
        rows, chans = [], []
        for l, (i, o) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:])):
            y1, y2 = -1.0 + 2.0 * l / L, -1.0 + 2.0 * (l + 1) / L
            xi, xo = _positions(i), _positions(o)
            X1, X2 = np.meshgrid(xi, xo, indexing="ij")  # (in, out): row-major like W
            rows.append(np.stack([X1.ravel(), np.full(i * o, y1), X2.ravel(), np.full(i * o, y2)], axis=1))
            chans.append(np.zeros(i * o, dtype=int))
            rows.append(np.stack([np.zeros(o), np.full(o, y1), xo, np.full(o, y2)], axis=1))
            chans.append(np.ones(o, dtype=int))
        coords, channel = np.concatenate(rows), np.concatenate(chans)
    dist = np.hypot(coords[:, 2] - coords[:, 0], coords[:, 3] - coords[:, 1])
    coords = np.concatenate([coords, dist[:, None], np.ones((len(coords), 1))], axis=1)
    if layer_sizes is None and dim != coords.shape[0]:
        raise AssertionError("substrate size")
    return coords, channel


def genome_size(hidden: int) -> int:
    return N_INPUTS * hidden + hidden + hidden * 2 + 2


def cppn_outputs(genomes: np.ndarray, coords: np.ndarray, hidden: int) -> np.ndarray:
    """CPPN outputs, shape (n, P, 2), of n genomes at P substrate points."""
    G = np.atleast_2d(genomes)
    n = G.shape[0]
    pos = 0
    W1 = G[:, pos:pos + N_INPUTS * hidden].reshape(n, N_INPUTS, hidden)
    pos += N_INPUTS * hidden
    b1 = G[:, pos:pos + hidden].reshape(n, 1, hidden)
    pos += hidden
    W2 = G[:, pos:pos + hidden * 2].reshape(n, hidden, 2)
    pos += hidden * 2
    b2 = G[:, pos:pos + 2].reshape(n, 1, 2)
    z = np.matmul(coords[None], W1) + b1  # (n, P, hidden)
    kind = np.arange(hidden) % 4
    h = np.empty_like(z)
    h[..., kind == 0] = np.sin(z[..., kind == 0])
    h[..., kind == 1] = np.exp(-z[..., kind == 1] ** 2)
    h[..., kind == 2] = np.tanh(z[..., kind == 2])
    h[..., kind == 3] = z[..., kind == 3]
    return np.matmul(h, W2) + b2


def phenotypes(genomes, coords, channel, x0, params) -> np.ndarray:
    """Policy parameter vectors (n, P) drawn by n CPPN genomes."""
    out = cppn_outputs(genomes, coords, params["cppn_hidden"])
    o = np.take_along_axis(out, channel[None, :, None], axis=2)[..., 0]
    thr = params["expression_threshold"]
    w = np.where(np.abs(o) < thr, 0.0, np.sign(o) * (np.abs(o) - thr)) * params["weight_scale"]
    return x0[None, :] + w


def run(run, params: dict) -> None:
    """CMA-ES over the CPPN's weights until the Run's budget is spent."""
    from ..run import method_seed

    coords, channel = substrate(run.layer_sizes, run.dim)
    if coords.shape[0] != run.dim:
        raise AssertionError(f"substrate has {coords.shape[0]} points for {run.dim} parameters")
    g0 = np.zeros(genome_size(params["cppn_hidden"]))
    restart = 0
    es = make_es(g0, params["sigma0"], method_seed(run.seed, restart), params["pop_size"])
    best_g, best_f = g0, -np.inf
    while run.can_afford(es.popsize):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            G = np.array(es.ask())
        f = run.evaluate(phenotypes(G, coords, channel, run.x0, params))
        j = int(np.argmax(f))
        if f[j] >= best_f:
            best_f, best_g = float(f[j]), G[j].copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            es.tell(list(G), list(-f))
        if run.end_generation(es.sigma):
            return
        reasons = stop_reasons(es)
        if reasons:
            restart += 1
            print(f"indirect_encoding: pycma stopped ({', '.join(reasons)}); restart {restart} from the best CPPN",
                  file=sys.stderr, flush=True)
            es = make_es(best_g, params["sigma0"], method_seed(run.seed, restart), params["pop_size"])
