#!/usr/bin/env python3
"""GAIA beside its peers, from the JSON results `run.sh` keeps: one row per figure with each
round's value (GAIA / peer), the medians, the ratio of the medians (how many times better GAIA
is: > 1 means GAIA is ahead, whichever way the figure goes) and the machine's other CPU use.

Other CPU use is the CPU the machine spent during a phase that was neither the client's nor the
system's under test (the peers' `other_cpu_s`), divided by the phase's wall time, in cores; a
value over 0.5 core is marked `*`: something else ran beside that figure.

Usage: python3 benches/peers/compare.py RESULTS_DIR [--json]   (stdlib only)
"""

from __future__ import annotations

import glob
import json
import os
import re
import statistics
import sys


def load(resdir):
    runs = {}
    for p in glob.glob(os.path.join(resdir, "*-r*.json")):
        m = re.match(r"(\w+)-(quick|default)-r(\d+)\.json$", os.path.basename(p))
        if not m:
            continue
        try:
            with open(p) as f:
                runs.setdefault(m.group(1), {})[int(m.group(3))] = json.load(f)
        except (OSError, ValueError):
            continue
    return runs


def g(d, *path):
    for k in path:
        if isinstance(d, dict) and k in d:
            d = d[k]
        elif isinstance(d, list) and isinstance(k, int) and -len(d) <= k < len(d):
            d = d[k]
        else:
            return None
    return d


def other_cores(phase):
    """Other CPU use during a phase, in cores (None if the phase has no wall time)."""
    if not isinstance(phase, dict):
        return None
    wall = (phase.get("wall_s") or phase.get("all_results_ready_s")
            or (phase.get("tasks", 0) * phase.get("spacing_ms", 0) / 1000.0) or None)
    o = phase.get("other_cpu_s")
    return None if o is None or not wall else o / wall


# A figure: label, GAIA's value and phase from its result, the peer's (the best of the peer's
# configurations, as the peers' README says to compare), and which way is better.
def best_of(configs, fn, lower):
    vals = [(fn(c), c) for c in configs or []]
    vals = [(v, c) for v, c in vals if isinstance(v, (int, float))]
    if not vals:
        return None, None
    return (min if lower else max)(vals, key=lambda x: x[0])


def gpool(d):
    return g(d, "pools", 0) or {}


def celery(d):
    return [p for p in (g(d, "pools") or []) if "error" not in p]


def mlflow(d, workers=None):
    return [c for c in (g(d, "configs") or []) if workers is None or c.get("workers") in workers]


def gcfg(d):
    return g(d, "configs", 0) or {}


def dispatch_figures():
    def lat(phase, key, q):
        return lambda p: g(p, phase, key, q)

    def per_job_cpu(phase, cpu_key):
        def f(p):
            cpu, n = g(p, phase, cpu_key), g(p, phase, "tasks")
            return 1000 * cpu / n if cpu is not None and n else None
        return f

    return [
        # label, gaia fn, gaia phase, peer fn, peer phase, lower is better
        ("dispatch to an idle worker, submit → job's first instruction, p50 (ms)",
         lat("a_latency", "submit_to_start", "p50_ms"), "a_latency",
         lat("a_latency", "submit_to_start", "p50_ms"), "a_latency", True),
        ("  same, p99 (ms)", lat("a_latency", "submit_to_start", "p99_ms"), "a_latency",
         lat("a_latency", "submit_to_start", "p99_ms"), "a_latency", True),
        ("submit → result seen by the client, p50 (ms)",
         lat("a2_roundtrip", "submit_to_result", "p50_ms"), None,
         lat("a2_roundtrip", "submit_to_result", "p50_ms"), None, True),
        ("no-op jobs, one submit per job, 2 slots (jobs/s)",
         lambda p: g(p, "b_throughput", "jobs_per_s"), "b_throughput",
         lambda p: g(p, "b_throughput", "jobs_per_s"), "b_throughput", False),
        ("  GAIA in batches of 1,000 (best case) vs the same (jobs/s)",
         lambda p: g(p, "b_throughput_batch", "jobs_per_s"), "b_throughput_batch",
         lambda p: g(p, "b_throughput", "jobs_per_s"), "b_throughput", False),
        ("no-op jobs queued first, drain (jobs/s)",
         lambda p: g(p, "b2_drain", "jobs_per_s"), "b2_drain",
         lambda p: g(p, "b2_drain", "jobs_per_s"), "b2_drain", False),
        ("CPU per no-op job while draining, all processes (ms)",
         per_job_cpu("b2_drain", "server_plus_worker_cpu_s"), "b2_drain",
         per_job_cpu("b2_drain", "worker_plus_redis_cpu_s"), "b2_drain", True),
        ("process job: submit → process running (GAIA) / child exited (Celery), p50 (ms)",
         lat("c_spawn_latency", "submit_to_start", "p50_ms"), "c_spawn_latency",
         lat("c_spawn_latency", "submit_to_child_exited", "p50_ms"), "c_spawn_latency", True),
        ("  same vs Celery's submit → pre-spawn, p50 (ms)",
         lat("c_spawn_latency", "submit_to_start", "p50_ms"), "c_spawn_latency",
         lat("c_spawn_latency", "submit_to_start", "p50_ms"), "c_spawn_latency", True),
        ("process jobs, one submit per job (jobs/s)",
         lambda p: g(p, "c_spawn_throughput", "jobs_per_s"), "c_spawn_throughput",
         lambda p: g(p, "c_spawn_throughput", "jobs_per_s"), "c_spawn_throughput", False),
        ("process jobs queued first, drain (jobs/s)",
         lambda p: g(p, "c2_spawn_drain", "jobs_per_s"), "c2_spawn_drain",
         lambda p: g(p, "c2_spawn_drain", "jobs_per_s"), "c2_spawn_drain", False),
        ("worker RSS idle (MiB; Celery: the worker tree)",
         lambda p: g(p, "worker_idle_mem", "rss_mib"), None,
         lambda p: g(p, "worker_idle_mem", "rss_mib"), None, True),
    ]


def ingest_figures():
    def ph(name, key):
        return lambda c: g(c, "phases", name, key)

    def read(page):
        def f(c):
            for r in g(c, "phases", "history", "reads") or []:
                if r.get("page_size") == page:
                    return r.get("wall_s")
            return None
        return f

    # MLflow's configuration per figure (its README: 1 worker for N=1 and single rows, 2
    # for 8 clients; best of both otherwise).
    return [
        ("generation rows, 125/request JSON, 1 client (rows/s)", ph("batch_n1", "rows_per_s"),
         ("batch_n1",), ph("batch_n1", "rows_per_s"), (1, 2), False),
        ("  request p50 (ms)", lambda c: g(c, "phases", "batch_n1", "latency", "p50_ms"),
         ("batch_n1",), lambda c: g(c, "phases", "batch_n1", "latency", "p50_ms"), (1, 2), True),
        ("generation rows, 125/request, 8 clients (rows/s)", ph("batch_n8", "rows_per_s"),
         ("batch_n8",), ph("batch_n8", "rows_per_s"), (1, 2), False),
        ("generation rows, 1/request, 1 client (rows/s)", ph("single_n1", "rows_per_s"),
         ("single_n1",), ph("single_n1", "rows_per_s"), (1, 2), False),
        ("server CPU per row, 125/request (ms)", ph("batch_n1", "server_cpu_ms_per_row"),
         ("batch_n1",), ph("batch_n1", "server_cpu_ms_per_row"), (1, 2), True),
        ("load 100,000 values of one metric, 1,000/request (values/s)",
         lambda c: g(c, "phases", "history", "load", "values_per_s"), None,
         lambda c: g(c, "phases", "history", "load", "values_per_s"), (1, 2), False),
        ("read 100,000-step history of one metric, parsed in Python, unpaged (s)",
         read("unpaged"), None, read("unpaged"), (1, 2), True),
        ("  pages of 25,000 (s)", read(25000), None, read(25000), (1, 2), True),
        ("  pages of 1,000 (s)", read(1000), None, read(1000), (1, 2), True),
        ("server RSS idle (MiB)", lambda c: g(c, "server_idle_mem", "rss_mib"), None,
         lambda c: g(c, "server_idle_mem", "rss_mib"), (1, 2), True),
    ]


def fmt(x):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def mark(v, o):
    s = fmt(v)
    return s + ("*" if o is not None and o > 0.5 else "")


def rows_for(gaia_runs, peer_runs, figures, gaia_unit, peer_unit, gaia_phase_of, peer_phase_of):
    out = []
    rounds = sorted(set(gaia_runs) & set(peer_runs))
    for label, gfn, gph, pfn, pph, lower in figures:
        gv, pv, go, po, cells = [], [], [], [], []
        for r in rounds:
            gu = gaia_unit(gaia_runs[r])
            a = gfn(gu)
            b, pconf = peer_unit(peer_runs[r], pfn, lower, pph)
            oa = other_cores(gaia_phase_of(gu, gph)) if gph else None
            ob = other_cores(peer_phase_of(pconf, pph)) if (pph and pconf) else None
            cells.append(f"{mark(a, oa)} / {mark(b, ob)}")
            if isinstance(a, (int, float)):
                gv.append(a)
            if isinstance(b, (int, float)):
                pv.append(b)
            go.append(oa)
            po.append(ob)
        if not gv or not pv:
            out.append((label, cells, None, None, None, go, po))
            continue
        gm, pm = statistics.median(gv), statistics.median(pv)
        ratio = (pm / gm if lower else gm / pm) if gm and pm else None
        out.append((label, cells, gm, pm, ratio, go, po))
    return rounds, out


def print_table(title, rounds, rows, peer):
    print(f"\n### {title}\n")
    print("| figure | " + " | ".join(f"round {r}: GAIA / {peer}" for r in rounds)
          + f" | GAIA median | {peer} median | GAIA ahead by | other CPU, cores (max) |")
    print("|---|" + "---|" * (len(rounds) + 4))
    for label, cells, gm, pm, ratio, go, po in rows:
        oc = [x for x in go + po if x is not None]
        print(f"| {label} | " + " | ".join(cells)
              + f" | {fmt(gm)} | {fmt(pm)} | {'–' if ratio is None else f'{ratio:.1f}×'} | "
              + (f"{max(oc):.2f}" if oc else "–") + " |")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if not args:
        sys.exit(__doc__)
    runs = load(args[0])
    out = {}
    if "gaia_dispatch" in runs and "celery_dispatch" in runs:
        def peer(d, fn, lower, ph):
            v, c = best_of(celery(d), fn, lower)
            return v, c
        rounds, rows = rows_for(runs["gaia_dispatch"], runs["celery_dispatch"],
                                dispatch_figures(), gpool, peer,
                                lambda u, ph: u.get(ph), lambda c, ph: c.get(ph))
        print_table("Dispatch: GAIA (`gaia work --slots 2`) vs Celery + Redis (`-c 2`, the better "
                    "of threads and prefork per figure)", rounds, rows, "Celery")
        out["dispatch"] = rows
    if "gaia_ingest" in runs and "mlflow_ingest" in runs:
        def peer(d, fn, lower, _ph):
            return None, None

        figs = ingest_figures()
        rounds = sorted(set(runs["gaia_ingest"]) & set(runs["mlflow_ingest"]))
        rows = []
        for label, gfn, gph, pfn, workers, lower in figs:
            fig = [(label, gfn, gph[0] if gph else None, pfn, gph[0] if gph else None, lower)]

            def peer_unit(d, fn, lower_, _ph, workers=workers):
                return best_of(mlflow(d, workers), fn, lower_)
            _, r = rows_for(runs["gaia_ingest"], runs["mlflow_ingest"], fig, gcfg, peer_unit,
                            lambda u, ph: g(u, "phases", ph), lambda c, ph: g(c, "phases", ph))
            rows += r
        print_table("Ingest and history: GAIA (JSON, MLflow's shapes, one Python client) vs MLflow "
                    "tracking server (sqlite; the better of `--workers 1` and `2` per figure)",
                    rounds, rows, "MLflow")
        gi = [gcfg(runs["gaia_ingest"][r]) for r in rounds]
        r8 = [g(c, "phases", "history", "read_8_metrics", "wall_s") for c in gi]
        if any(r8):
            print("\nGAIA alone, its own history shape: 100,000 steps × 8 metrics read whole and "
                  "parsed in Python: " + " / ".join(fmt(x) for x in r8) + " s")
        out["ingest"] = rows
    for name, rs in runs.items():
        loads = [f"r{r}: {g(d, 'machine', 'loadavg_at_start', 0)}" for r, d in sorted(rs.items())]
        print(f"\n{name}: load average at start " + ", ".join(loads))
    if "--json" in sys.argv:
        print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
