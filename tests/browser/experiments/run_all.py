#!/usr/bin/env python3
"""A stand-in experiment for the dashboard's browser test: prints GAIA lines whose curves look
like real runs (noisy, method-dependent, sigma shrinking), a few warnings, and writes a result
file. Standard library only.

GAIA_JOB_PARAMS: gens (generations, default 60), delay (seconds between generations, default
0.02), fail (true: exit 1 with a traceback after a few generations), echo (a string or a list of
strings printed as log lines at the first generation and every `echo_every` (default 10) after,
and to stderr before a failure: the browser test's XSS payloads), status (an `@gaia` status),
file_bytes (also write data.bin of that many bytes: a result file whose size the page shows).
"""
import argparse
import json
import math
import os
import random
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--method", default="cma_es")
p.add_argument("--env", default="CartPole-v1")
p.add_argument("--max-evals", type=int, default=100000)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
params = json.loads(os.environ.get("GAIA_JOB_PARAMS") or "{}")
gens = int(params.get("gens", 60))
delay = float(params.get("delay", 0.02))
rng = random.Random(hash((a.method, a.env, a.seed)) & 0xFFFFFFFF)
speed = {"cma_es": 0.09, "openai_es": 0.06, "island_model": 0.075, "random_search": 0.03}.get(a.method, 0.05)
top = {"CartPole-v1": 500.0, "sphere": 0.0, "rastrigin": -5.0}.get(a.env, 100.0)
low = {"CartPole-v1": 10.0, "sphere": -80.0, "rastrigin": -120.0}.get(a.env, -100.0)
popsize = 16
evals_per_gen = max(1, min(a.max_evals // max(gens, 1), popsize * 4))
out = os.environ.get("GAIA_OUTPUT_DIR", ".")
start = time.time()
ever = -math.inf
sigma = 0.5 * (1 + rng.random())
echo = params.get("echo") or []
echo = [echo] if isinstance(echo, str) else [str(e) for e in echo]
echo_every = max(1, int(params.get("echo_every", 10)))
print(f"starting {a.method} on {a.env} seed {a.seed}, {gens} generations", flush=True)
if params.get("status"):
    print("@gaia " + json.dumps({"status": str(params["status"])}), flush=True)
for g in range(1, gens + 1):
    level = top - (top - low) * math.exp(-speed * g * (0.7 + 0.6 * rng.random()))
    best = level + rng.gauss(0, abs(top - low) * 0.03)
    if rng.random() < 0.03:
        best -= abs(top - low) * 0.3  # a bad generation: the downsampler must keep it
    ever = max(ever, best)
    mean = best - abs(top - low) * (0.1 + 0.1 * rng.random())
    sigma *= 0.93 + 0.05 * rng.random()
    evals = g * evals_per_gen
    print(f"Gen {g:4d} | Best: {best:8.2f} | Ever: {ever:8.2f} | Mean: {mean:8.2f} | σ: {sigma:.4g} | Evals: {evals:,} | {time.time() - start:5.1f}s", flush=True)
    if echo and (g == 1 or g % echo_every == 0):
        for e in echo:
            print(f"echo at generation {g}: {e}", flush=True)
    if g % 25 == 0:
        print(f"WARNING: generation {g}: {rng.randint(1, 3)} episodes hit the step limit", file=sys.stderr, flush=True)
    if params.get("fail") and g >= 5:
        for e in echo:
            print(f"about to fail: {e}", file=sys.stderr, flush=True)
        print("Traceback (most recent call last):\n  File \"run_all.py\", line 42, in <module>\nRuntimeError: simulated divergence", file=sys.stderr, flush=True)
        sys.exit(1)
    if delay:
        time.sleep(delay)
print("@gaia " + json.dumps({"final": {"best_ever": ever, "generations": gens}}), flush=True)
with open(os.path.join(out, "result.json"), "w") as f:
    json.dump({"method": a.method, "env": a.env, "seed": a.seed, "best_ever": ever}, f)
if params.get("file_bytes"):
    with open(os.path.join(out, "data.bin"), "wb") as f:
        f.write(bytes(int(params["file_bytes"])))
