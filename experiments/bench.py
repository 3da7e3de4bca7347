#!/usr/bin/env python3
"""Benchmark of the experiments on CartPole-v1.

    .venv/bin/python bench.py [--seeds 5] [--generations 30] [--json FILE]

Prints:
1. Wall time (and evals) for ``run_all.py --method cma_es`` to solve CartPole-v1 with the default
   settings, for several seeds: the whole process, from start to the final line.
2. Evaluations per second (one evaluation = one candidate policy over 5 episodes, as in a run)
   with 1 worker and with all cores: "early" = random policies as in a run's first generations
   (short episodes), "late" = small perturbations of a solving policy (nearly every episode
   lasts the full 500 steps, the worst case); populations of 18 (cma_es' default) and 200. Both
   backends: gymnasium's numpy CartPole vector env (the default) and scalar envs. Also evals per
   CPU-second (main process + pool workers), which hardly depends on other load. With all cores,
   the line says whether the pool was used: vector-env batches of fewer than 512 episodes run
   in-process whatever the number of workers (gaia_exp/evaluation.py explains why).

The machine may be shared: the load average is printed with the figures.

    .venv/bin/python bench.py --box2d [--lunar-params best_params.npy]

measures, instead, evals/s on LunarLander-v3 and BipedalWalker-v3 with the default network
(hidden [16], 5 episodes per eval, pycma's default population) with 1 worker and all cores:
random policies as in a run's first generations, and, given the best_params.npy of a solved
LunarLander run, small perturbations of it (landing episodes of a few hundred steps).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # as run_all.py does
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

from gaia_exp.cli import default_workers  # noqa: E402
from gaia_exp.evaluation import GymConfig, GymEvaluator  # noqa: E402
from gaia_exp.run import STREAM_TRAIN, derive_seeds  # noqa: E402

ORIGINAL_EVALS_PER_S = 152.0


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def solve_runs(seeds: int, out_root: Path) -> list[dict]:
    rows = []
    for seed in range(seeds):
        out = out_root / f"solve-{seed}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
        env["GAIA_OUTPUT_DIR"] = str(out)
        t = time.perf_counter()
        p = subprocess.run([sys.executable, str(HERE / "run_all.py"), "--method", "cma_es", "--env", "CartPole-v1",
                            "--max-evals", "20000", "--seed", str(seed)], cwd=HERE, env=env,
                           capture_output=True, text=True, encoding="utf-8")
        wall = time.perf_counter() - t
        if p.returncode != 0:
            raise SystemExit(f"run_all.py failed (seed {seed}):\n{p.stderr}")
        final = json.loads(p.stdout.strip().splitlines()[-1][len("@gaia "):])["final"]
        rows.append({"seed": seed, "wall_s": wall, "run_s": final["wall_time_s"], "evals": final["evals"],
                     "generations": final["generations"], "final_mean": final["mean"], "solved": final["solved"],
                     "params": str(out / "best_params.npy")})
        print(f"  seed {seed}: solved={final['solved']} final mean {final['mean']:.1f} after {final['evals']:,} evals "
              f"/ {final['generations']} gens; {wall:.2f}s wall (process), {final['wall_time_s']:.2f}s in the run",
              flush=True)
    return rows


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def throughput(workers: int, backend: str, thetas_per_gen: list[np.ndarray], max_seconds: float = 4.0) -> dict:
    """Wall-clock evals/s, and evals per CPU-second (main process + pool workers, which are
    reaped by close(), so RUSAGE_CHILDREN has them): the latter hardly depends on other load."""
    cpu0, child0 = time.process_time(), _children_cpu()
    ev = GymEvaluator(GymConfig("CartPole-v1", (16,), None, backend), workers)
    try:
        ev.returns(thetas_per_gen[0], derive_seeds(0, STREAM_TRAIN, 0, 5))  # warm-up (env creation)
        evals = steps = 0
        t = time.perf_counter()
        for g, thetas in enumerate(thetas_per_gen, start=1):
            r = ev.returns(thetas, derive_seeds(0, STREAM_TRAIN, g, 5))
            evals += thetas.shape[0]
            steps += int(r.sum())  # CartPole: reward 1 per step
            if time.perf_counter() - t > max_seconds:
                break
        dt = time.perf_counter() - t
        pool_batches = ev.pool_batches
    finally:
        ev.close()
    cpu = time.process_time() - cpu0 + _children_cpu() - child0
    return {"workers": workers, "backend": backend, "evals": evals, "seconds": dt, "evals_per_s": evals / dt,
            "steps_per_s": steps / dt, "mean_episode_len": steps / evals / 5, "cpu_s": cpu,
            "evals_per_cpu_s": evals / cpu, "generations": g, "pool_batches": pool_batches}


def box2d_throughput(env_id: str, workers: int, thetas_per_gen: list[np.ndarray], max_seconds: float) -> dict:
    cpu0, child0 = time.process_time(), _children_cpu()
    ev = GymEvaluator(GymConfig(env_id, (16,)), workers)
    try:
        ev.returns(thetas_per_gen[0][:workers], derive_seeds(0, STREAM_TRAIN, 0, 1))  # warm-up (pool, envs)
        steps = sum(len(ev.local.visited_states(thetas_per_gen[0][0], derive_seeds(0, STREAM_TRAIN, 1, 5),
                                                max_states=10**9)[1]) for _ in range(1))
        evals = 0
        t = time.perf_counter()
        for g, thetas in enumerate(thetas_per_gen, start=1):
            ev.returns(thetas, derive_seeds(0, STREAM_TRAIN, g, 5))
            evals += thetas.shape[0]
            if time.perf_counter() - t > max_seconds:
                break
        dt = time.perf_counter() - t
    finally:
        ev.close()
    cpu = time.process_time() - cpu0 + _children_cpu() - child0
    return {"env": env_id, "workers": workers, "evals": evals, "seconds": dt, "evals_per_s": evals / dt,
            "evals_per_cpu_s": evals / cpu, "sample_episode_steps": steps / 5}


def box2d_main(args) -> int:
    cores = default_workers()
    print(f"Box2D throughput: Python {sys.version.split()[0]}, numpy {np.__version__}, {cores} cores, "
          f"load average {load()}", flush=True)
    rng = np.random.default_rng(0)
    results = []
    cases = []
    for env_id, n in (("LunarLander-v3", 212), ("BipedalWalker-v3", 468)):
        pop = int(4 + 3 * np.log(n))
        cases.append((env_id, "random policies (sigma 0.5)", [rng.standard_normal((pop, n)) * 0.5 for _ in range(50)]))
    if args.lunar_params:
        good = np.load(args.lunar_params)
        cases.append(("LunarLander-v3", "solved policy +- 0.02",
                      [good + rng.standard_normal((20, good.size)) * 0.02 for _ in range(50)]))
    for env_id, label, pops in cases:
        for workers in sorted({1, cores}):
            r = max((box2d_throughput(env_id, workers, pops, args.seconds) for _ in range(args.repeat)),
                    key=lambda x: x["evals_per_s"])
            r.update(workload=label, pop=pops[0].shape[0])
            results.append(r)
            print(f"  {env_id:17s} {label:28s} pop {r['pop']:2d} workers={workers}: {r['evals_per_s']:6.1f} evals/s, "
                  f"{r['evals_per_cpu_s']:6.1f} evals/CPU-s (sample episode {r['sample_episode_steps']:.0f} steps)",
                  flush=True)
    print(f"load average after: {load()}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def pool_use(r: dict) -> str:
    """Whether the pool was used: vector-env batches under 2 x VECTOR_MIN_EPISODES_PER_CHUNK
    episodes run in-process whatever the number of workers (see gaia_exp/evaluation.py)."""
    if r["pool_batches"] == 0:
        return "pool unused (batch run in-process)"
    return f"pool used for {r['pool_batches']}/{r['generations'] + 1} batches"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5, help="seeds of the cma_es solve runs (default 5)")
    ap.add_argument("--generations", type=int, default=30, help="generations per throughput measurement")
    ap.add_argument("--pop", type=int, default=18, help="population per generation (cma_es default: 18)")
    ap.add_argument("--seconds", type=float, default=2.0, help="time per throughput measurement (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="measurements per figure; the best is kept (default 3)")
    ap.add_argument("--json", help="also write the figures as JSON to this file")
    ap.add_argument("--box2d", action="store_true", help="measure LunarLander-v3 and BipedalWalker-v3 instead")
    ap.add_argument("--lunar-params", help="with --box2d: best_params.npy of a solved LunarLander-v3 run")
    args = ap.parse_args()
    if args.box2d:
        return box2d_main(args)
    cores = default_workers()
    import gymnasium

    print(f"GAIA experiments benchmark: Python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"gymnasium {gymnasium.__version__}, {cores} cores, load average {load()}", flush=True)
    result = {"cores": cores, "load_before": load()}

    with tempfile.TemporaryDirectory() as tmp:
        print("\n1. cma_es solving CartPole-v1 (defaults, budget 20,000 evals):", flush=True)
        solves = solve_runs(args.seeds, Path(tmp))
        walls = [r["wall_s"] for r in solves]
        print(f"  => solved {sum(r['solved'] for r in solves)}/{len(solves)}; wall time median "
              f"{np.median(walls):.2f}s, max {max(walls):.2f}s; evals median "
              f"{int(np.median([r['evals'] for r in solves])):,}", flush=True)
        result["solve"] = [{k: v for k, v in r.items() if k != "params"} for r in solves]
        solved = next((r for r in solves if r["solved"]), solves[0])
        good = np.load(solved["params"])

    rng = np.random.default_rng(0)
    G = args.generations
    workloads = [
        ("early", args.pop, [rng.standard_normal((args.pop, good.size)) * 0.5 for _ in range(G)]),
        ("late", args.pop, [good + rng.standard_normal((args.pop, good.size)) * 0.02 for _ in range(G)]),
        ("late", 200, [good + rng.standard_normal((200, good.size)) * 0.02 for _ in range(G)]),
    ]
    print(f"\n2. Evaluations per second on CartPole-v1 (one evaluation = 5 episodes; up to {G} generations or "
          f"~{args.seconds:g} s, best of {args.repeat}; original GAIA: {ORIGINAL_EVALS_PER_S:.0f} evals/s):", flush=True)
    result["throughput"] = []
    for label, pop, pops in workloads:
        for backend in ("vector", "scalar"):
            for workers in sorted({1, cores}):
                runs = [throughput(workers, backend, pops, args.seconds) for _ in range(args.repeat)]
                r = max(runs, key=lambda x: x["evals_per_s"])  # best of N: least disturbed by other load
                r.update(workload=label, pop=pop)
                result["throughput"].append(r)
                print(f"  {label:5s} pop {pop:3d} {backend:6s} workers={workers}: {r['evals_per_s']:6.0f} evals/s "
                      f"({r['evals_per_s'] / ORIGINAL_EVALS_PER_S:4.1f}x original), {r['steps_per_s']:9,.0f} env steps/s, "
                      f"episodes {r['mean_episode_len']:3.0f} steps; {r['evals_per_cpu_s']:5.0f} evals/CPU-s"
                      f"{'' if workers == 1 else '; ' + pool_use(r)}", flush=True)
    result["load_after"] = load()
    print(f"\nload average after: {result['load_after']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
