"""``run_all.py``: the command line GAIA workers run.

    run_all.py --method M [--env E] [--max-evals N] [--seed S] [--eval-episodes K]
               [--workers W] [--results-dir D]
    run_all.py --list

Params come from the GAIA_JOB_PARAMS environment variable (a JSON object) over the defaults;
results go to GAIA_OUTPUT_DIR when it is set. stdout carries only GAIA lines (Gen lines and
``@gaia {json}`` lines); diagnostics go to stderr. Exit codes: 0 done (solved or not),
2 bad command line / params / unavailable environment, 1 crash, 143 SIGTERM, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from . import __version__, envs, methods
from .envs import EnvError
from .lines import gaia_line
from .params import ANALYTIC_PARAMS, GENERAL_PARAMS, GYM_PARAMS, ParamError, parse_job_params, resolve

DEFAULT_MAX_EVALS = 20_000


class Terminated(BaseException):
    """Raised in the main process by the SIGTERM handler."""


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # same exit code as argparse (2), message on stderr
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="run_all.py", description="GAIA experiments: evolution strategies on control tasks.",
                epilog="Params: GAIA_JOB_PARAMS='{\"pop_size\": 32}' (see --list). "
                       "Output: GAIA_OUTPUT_DIR, else --results-dir.")
    p.add_argument("--method", choices=methods.NAMES, help="optimisation method")
    p.add_argument("--env", "--environment", dest="env", default=envs.DEFAULT_ENV,
                   help=f"environment (default {envs.DEFAULT_ENV}; see --list)")
    p.add_argument("--max-evals", type=int, default=DEFAULT_MAX_EVALS,
                   help=f"budget of candidate evaluations (default {DEFAULT_MAX_EVALS:,})")
    p.add_argument("--seed", type=int, default=0, help="run seed, >= 0 (default 0)")
    p.add_argument("--eval-episodes", type=int, default=None,
                   help="episodes per evaluation (default: param eval_episodes, 5)")
    p.add_argument("--workers", type=int, default=None,
                   help=f"evaluation processes (default: number of cores, here {default_workers()}; "
                        "1 = in-process, no pool)")
    p.add_argument("--results-dir", default=None,
                   help="output folder when GAIA_OUTPUT_DIR is unset (default results/<method>-<env>-<seed>)")
    p.add_argument("--list", action="store_true", help="list methods, environments and params, then exit")
    return p


def list_text() -> str:
    lines = ["Methods (--method):"]
    for name in methods.NAMES:
        lines.append(f"  {name:<26}{methods.summary(name)}")
    lines.append("")
    lines.append("Environments (--env):")
    for info in envs.CURATED:
        lines.append(f"  {info.name:<26}{info.description}")
    lines.append("  (any other gymnasium id with flat Box observations and Discrete/Box actions also works)")
    lines.append("")
    lines.append("Params (GAIA_JOB_PARAMS, a JSON object; name=default):")
    groups = [("all runs", GENERAL_PARAMS), ("gymnasium envs", GYM_PARAMS), ("sphere, rastrigin", ANALYTIC_PARAMS)]
    groups += [(f"--method {name}", methods.get(name).PARAMS) for name in methods.NAMES]
    for title, specs in groups:
        lines.append(f"  {title}:")
        for spec in specs:
            lines.append(f"    {spec.describe()}")
    return "\n".join(lines)


def versions(method=None) -> dict:
    import gymnasium

    from .methods._cma import cma

    out = {"python": platform.python_version(), "numpy": np.__version__, "gymnasium": gymnasium.__version__,
           "cma": cma.__version__, "gaia_exp": __version__}
    if method is not None and hasattr(method, "versions"):
        out.update(method.versions())
    return out


def _write_json(path: Path, obj) -> None:
    from .lines import _json_safe

    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_json_safe(obj), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def main(argv=None) -> int:
    for stream in (sys.stdout, sys.stderr):  # σ and ✅ must survive a C/latin-1 locale
        try:
            if (stream.encoding or "").lower().replace("-", "") != "utf8":
                stream.reconfigure(encoding="utf-8", errors="replace")
        except (AttributeError, ValueError, OSError):
            pass
    args = build_parser().parse_args(argv)
    if args.list:
        print(list_text(), flush=True)
        return 0
    if args.method is None:
        return _fail("--method is required (one of: " + ", ".join(methods.NAMES) + ")")
    if args.max_evals < 1:
        return _fail("--max-evals must be >= 1")
    if args.seed < 0:
        return _fail("--seed must be >= 0")
    if args.workers is not None and args.workers < 1:
        return _fail("--workers must be >= 1")
    if args.eval_episodes is not None and args.eval_episodes < 1:
        return _fail("--eval-episodes must be >= 1")

    try:
        info = envs.lookup(args.env)
        method = methods.get(args.method)
        specs = GENERAL_PARAMS + (ANALYTIC_PARAMS if info.kind == "analytic" else GYM_PARAMS) + method.PARAMS
        params = resolve(parse_job_params(os.environ.get("GAIA_JOB_PARAMS")), specs,
                         f"--method {args.method} --env {info.name}")
        if args.eval_episodes is not None and info.kind == "gym":
            params["eval_episodes"] = args.eval_episodes
        envs.check_available(info, params.get("env_kwargs"))
        if hasattr(method, "check"):  # what the method needs of the env or of this Python
            method.check(info, params)
    except (ParamError, EnvError) as exc:
        return _fail(str(exc))

    workers = args.workers or default_workers()
    out_dir = Path(os.environ.get("GAIA_OUTPUT_DIR") or args.results_dir
                   or Path("results") / f"{args.method}-{info.name}-{args.seed}")
    out_dir.mkdir(parents=True, exist_ok=True)
    from .evaluation import pool_was_killed

    code = 1
    try:
        code = _run(args, info, method, params, workers, out_dir)
    finally:
        if pool_was_killed():  # skip multiprocessing's exit handlers, which would wait forever
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(code)
    return code


def _fail(message: str) -> int:
    print(f"run_all.py: error: {message}", file=sys.stderr, flush=True)
    return 2


def _run(args, info, method, params, workers, out_dir: Path) -> int:
    """Run the experiment; returns the exit code."""
    from .evaluation import AnalyticEvaluator, GymConfig, GymEvaluator
    from .run import STREAM_FINAL, STREAM_VALIDATE, STREAM_X0, Run, derive_seeds, verdict

    t0 = time.perf_counter()
    started = time.time()

    def on_sigterm(signum, frame):
        raise Terminated()

    previous_handler = signal.signal(signal.SIGTERM, on_sigterm)
    threshold = envs.threshold_of(info)
    evaluator = None
    run = None
    status, code = "crashed", 1
    curve_file = open(out_dir / "curve.csv", "w", newline="")
    try:
        if info.kind == "analytic":
            evaluator = AnalyticEvaluator(info.name, params["dim"])
            rng = np.random.default_rng(derive_seeds(args.seed, STREAM_X0, 0, 4))
            x0 = rng.uniform(-params["x0_range"], params["x0_range"], params["dim"])
            eval_episodes, validate, workers_used = 1, None, 1
        else:
            cfg = GymConfig(info.name, tuple(params["hidden"]), params["max_episode_steps"], params["backend"],
                            policy=getattr(method, "POLICY", "mlp"),
                            env_kwargs=tuple(sorted(params["env_kwargs"].items())))
            evaluator = GymEvaluator(cfg, workers)
            x0 = np.zeros(evaluator.n_params)
            eval_episodes, workers_used = params["eval_episodes"], evaluator.workers

            def validate(theta, gen):
                seeds = derive_seeds(args.seed, STREAM_VALIDATE, gen, params["validation_episodes"])
                return evaluator.returns(theta[None, :], seeds)[0]

        run = Run(evaluator=evaluator, x0=x0, seed=args.seed, max_evals=args.max_evals, eval_episodes=eval_episodes,
                  threshold=threshold, stop_when_solved=params["stop_when_solved"], validate=validate,
                  precise=info.kind == "analytic", block_size=params.get("final_episodes", 20), curve_file=curve_file, t0=t0,
                  extra_metrics=tuple(getattr(method, "EXTRA_METRICS", ())),
                  layer_sizes=None if info.kind == "analytic" else list(evaluator.local.policy.sizes))
        run.status(f"{args.method} on {info.name}: {run.dim} params, budget {args.max_evals:,} evals, "
                   f"seed {args.seed}, {workers_used} worker(s)")
        method.run(run, params)
        stopped_at_threshold = run.stop_reason == "solved"

        # Final evaluation of the best-ever parameters on fresh episodes.
        if info.kind == "analytic":
            rets = evaluator.returns(run.best_params[None, :])[0]
        else:
            rets = evaluator.returns(run.best_params[None, :],
                                     derive_seeds(args.seed, STREAM_FINAL, 0, params["final_episodes"]))[0]
        episodes = int(len(rets)) if info.kind == "gym" else None
        story = verdict(threshold=threshold, final_mean=float(np.mean(rets)), episodes=episodes,
                        best_ever=run.best_ever, stopped_at_threshold=stopped_at_threshold, validated=run.validated,
                        generation=len(run.curve), evals=run.evals, deterministic=info.kind == "analytic")
        run.stop_reason = story["stop_reason"]
        final = {
            "mean": float(np.mean(rets)),
            "std": float(np.std(rets)),
            "episodes": episodes,
            "threshold": threshold,
            "solved": story["solved"],
            "threshold_reached_in_training": story["threshold_reached_in_training"],
            "validated": run.validated,
            "best_ever": run.best_ever,
            "evals": run.evals,
            "generations": len(run.curve),
            "stop_reason": run.stop_reason,
            "verdict": story["verdict"],
            "wall_time_s": round(time.perf_counter() - t0, 3),
        }
        run.status(story["verdict"])
        evaluator.close()
        status, code = "done", 0
        _write_results(out_dir, args, info, params, workers_used, run, final, status, started, t0)
        run.emit(gaia_line({"final": final}))
        return 0
    except Terminated:
        status, code = "terminated", 143
        _log("run_all.py: SIGTERM: stopping the evaluation pool and exiting")
    except KeyboardInterrupt:
        status, code = "interrupted", 130
        _log("run_all.py: interrupted")
    except Exception:  # includes BrokenPipeError when the reader of stdout went away
        status, code = "crashed", 1
        _log(traceback.format_exc().rstrip())
    finally:
        signal.signal(signal.SIGTERM, previous_handler or signal.SIG_DFL)
        if evaluator is not None and code != 0:
            evaluator.close(terminate=True)
        curve_file.close()
    if run is not None:
        try:
            _write_results(out_dir, args, info, params, workers_used, run, None, status, started, t0)
        except Exception:
            _log(traceback.format_exc().rstrip())
    return code


def _log(message: str) -> None:
    """A diagnostic on stderr that never raises (stderr may be a closed pipe)."""
    try:
        print(message, file=sys.stderr, flush=True)
    except Exception:
        pass


def _policy_info(evaluator):
    local = getattr(evaluator, "local", None)
    if local is None:
        return None
    return {**local.policy.describe(), "backend": "vector" if local.vectorized else "scalar"}


def _write_results(out_dir, args, info, params, workers, run, final, status, started, t0) -> None:
    np.save(out_dir / "best_params.npy", run.best_params)
    result = {
        "status": status,
        "method": args.method,
        "env": info.name,
        "seed": args.seed,
        "max_evals": args.max_evals,
        "workers": workers,
        "params": params,
        "command": ["run_all.py", *sys.argv[1:]],
        "job_id": os.environ.get("GAIA_JOB_ID"),
        "versions": versions(methods.get(args.method)),
        "threshold": run.threshold,
        "best_ever": run.best_ever,
        "final": final,
        "solved": bool(final and final["solved"]),
        "threshold_reached_in_training": bool(final and final["threshold_reached_in_training"]),
        "verdict": final["verdict"] if final else None,
        "stop_reason": run.stop_reason,
        "validated": run.validated,
        "validation_episodes": run.validation_episodes,
        "evals": run.evals,
        "generations": len(run.curve),
        "n_params": run.dim,
        "policy": _policy_info(run.evaluator),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_time_s": round(time.perf_counter() - t0, 3),
        "files": ["result.json", "curve.csv", "best_params.npy"],
    }
    _write_json(out_dir / "result.json", result)
