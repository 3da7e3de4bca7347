#!/usr/bin/env python3
"""Does `--sampler tpe` beat `--sampler random` at equal budget? (issue 15)

Tunes openai_es on `sphere` (dimension 10, 1,000 evaluations a run) over
`lr=loguniform(0.0001,1.0)` and `sigma=loguniform(0.001,3.0)`: STUDIES studies per sampler
(`--sample-seed 1..STUDIES`), SAMPLES configurations each, one seed a configuration, all run
through a real `gaia serve` and `gaia work` (two slots). A study's score is the best best-ever
among its configurations (higher is better; the sphere's optimum is 0). The statistics are
rliable's, as `gaia compare` reports them: IQM with 95 % stratified-bootstrap intervals over
the studies, and the probability that a TPE study beats a random one.

    tests/stats/.venv/bin/python benches/tpe_vs_random.py [--studies 30] [--samples 24]
        [--gaia target/release/gaia] [--out benches/results/tpe-vs-random.json]

Needs a release `gaia` (`cargo build --release`) and the experiments' environment
(`.ci/install`); rliable and numpy come from tests/stats/.venv.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str, path: str):
    req = urllib.request.Request(url + path, headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=30)
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--slots", type=int, default=2)
    ap.add_argument("--gaia", default=os.path.join(ROOT, "target/release/gaia"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import numpy as np
    from rliable import library as rly
    from rliable import metrics

    tmp = tempfile.mkdtemp(prefix="gaia-tpe-")
    data = os.path.join(tmp, "data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GAIA_SERVER": url, "GAIA_DATA_DIR": data}
    serve = subprocess.Popen(
        [args.gaia, "serve", "--port", str(port), "--data-dir", data],
        stdout=open(os.path.join(tmp, "serve.log"), "w"), stderr=subprocess.STDOUT, env=env,
    )
    work = None
    try:
        token_file = os.path.join(data, "admin.token")
        for _ in range(200):
            if os.path.exists(token_file):
                break
            time.sleep(0.05)
        token = open(token_file).read().strip()
        work = subprocess.Popen(
            [args.gaia, "work", "--token-file", token_file, "--experiments-dir",
             os.path.join(ROOT, "experiments"), "--state-dir", os.path.join(tmp, "worker"),
             "--slots", str(args.slots), "--name", "tpe-bench"],
            stdout=open(os.path.join(tmp, "work.log"), "w"), stderr=subprocess.STDOUT, env=env,
        )
        t0 = time.time()
        names = []
        for seed in range(1, args.studies + 1):
            for sampler in ("tpe", "random"):
                name = f"{sampler}-{seed}"
                cmd = [args.gaia, "submit", "--study", name, "--method", "openai_es",
                       "--env", "sphere", "--param", "lr=loguniform(0.0001,1.0)",
                       "--param", "sigma=loguniform(0.001,3.0)", "--samples", str(args.samples),
                       "--sampler", sampler, "--sample-seed", str(seed), "--seeds", "1",
                       "--max-evals", "1000"]
                if sampler == "tpe":
                    cmd += ["--parallel", str(args.parallel)]
                subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
                names.append(name)
        pending = set(names)
        scores: dict[str, float] = {}
        while pending:
            time.sleep(2)
            for name in sorted(pending):
                s = get(url, token, f"/api/v1/studies/{name}")
                configs = s.get("configs", [])
                if s.get("done") and len(configs) == args.samples:
                    best = [c["best"] for c in configs if c.get("best") is not None]
                    scores[name] = max(best) if best else float("nan")
                    pending.discard(name)
            print(f"\r{len(scores)}/{len(names)} studies done, {time.time() - t0:.0f} s",
                  end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        took = time.time() - t0
    finally:
        for p in (work, serve):
            if p is not None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()

    tpe = np.array([scores[f"tpe-{i}"] for i in range(1, args.studies + 1)])
    rnd = np.array([scores[f"random-{i}"] for i in range(1, args.studies + 1)])
    # rliable takes (runs × tasks) matrices; one task here. Scores are negated distances to
    # the optimum, so higher is better, as rliable expects.
    runs = {"tpe": tpe[:, None], "random": rnd[:, None]}
    iqm = lambda x: np.array([metrics.aggregate_iqm(x)])  # noqa: E731
    point, ci = rly.get_interval_estimates(runs, iqm, reps=2000)
    prob, prob_ci = rly.get_interval_estimates(
        {"tpe,random": (runs["tpe"], runs["random"])},
        metrics.probability_of_improvement, reps=2000,
    )
    report = {
        "what": "openai_es on sphere (dim 10, 1,000 evals), lr=loguniform(0.0001,1.0), "
                "sigma=loguniform(0.001,3.0)",
        "studies_per_sampler": args.studies, "samples": args.samples,
        "parallel": args.parallel, "slots": args.slots, "jobs": 2 * args.studies * args.samples,
        "seconds": round(took, 1),
        "iqm": {k: [float(np.ravel(point[k])[0]), float(np.ravel(ci[k][0])[0]),
                    float(np.ravel(ci[k][1])[0])] for k in runs},
        "median": {k: float(np.median(v)) for k, v in (("tpe", tpe), ("random", rnd))},
        "worst": {k: float(np.min(v)) for k, v in (("tpe", tpe), ("random", rnd))},
        "p_tpe_beats_random": [float(np.ravel(prob["tpe,random"])[0]),
                               float(np.ravel(prob_ci["tpe,random"][0])[0]),
                               float(np.ravel(prob_ci["tpe,random"][1])[0])],
        "tpe": tpe.tolist(), "random": rnd.tolist(),
    }
    for k in ("tpe", "random"):
        p, lo, hi = report["iqm"][k]
        print(f"{k:>6}: IQM of the best found {p:.4f} [{lo:.4f}, {hi:.4f}]  median "
              f"{report['median'][k]:.4f}  worst {report['worst'][k]:.4f}")
    p, lo, hi = report["p_tpe_beats_random"]
    print(f"P(tpe > random) = {p:.2f} [{lo:.2f}, {hi:.2f}]  "
          f"({report['jobs']} jobs in {took:.0f} s)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
