#!/usr/bin/env python3
"""GAIA ingest + history-read benchmark at MLflow's shape, measured as the peers'
`mlflow_ingest.py` measures the MLflow tracking server.

The same generation rows (8 numbers: generation, evals, best, best_ever, mean, sigma, elapsed and
one named metric `extra`; step = generation), the same phases, counts and clients:

  * batch_n1  : 1 client, its own job, JSON batches of BATCH_ROWS rows (125 = MLflow's largest).
  * batch_n8  : 8 concurrent clients, one job each, same batches.
  * single_n1 : 1 client, one row per request.
  * history   : one job gets HISTORY_STEPS rows of one metric (`best`), 1,000 per request,
                then the whole series is read back and parsed by this Python client (json.loads
                and every (step, value) taken out, checked in order 0..N-1): unpaged, and in
                pages of 25,000 / 1,000 steps (`?from=&to=` on seq). Also the same read of an
                8-metric history of as many rows (what GAIA's own history figure returns).

Every client uses one keep-alive HTTP/1.1 connection with bodies encoded before the clock
starts; each batch is answered once it is durable on disk. Rows are counted in the store
afterwards (the rows route's `total`), not from the answers.

The last line on stdout is one JSON object with all the figures. Needs PEERS_DIR (the peers'
benchlib.py) and GAIA_BIN (default: target/release/gaia).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import tempfile
import threading
import time
import zlib

import gaialib as gl
from gaialib import bl

PROFILES = {
    "quick": dict(n1_rows=2000, n8_rows=500, single_reqs=100, history_steps=20000,
                  read_page_sizes=[25000], phase_cap_s=30),
    "default": dict(n1_rows=10000, n8_rows=2500, single_reqs=300, history_steps=100000,
                    read_page_sizes=[25000, 1000], phase_cap_s=75),
}


def gen_rows(seed: int, start: int, count: int) -> list[dict]:
    """The peers' deterministic generation rows, as GAIA rows (seq = step = generation)."""
    rnd = random.Random(seed * 7919 + start)
    best_ever = math.inf
    rows = []
    for g in range(start, start + count):
        best = 100.0 * math.exp(-g / 2000.0) + rnd.random()
        best_ever = min(best_ever, best)
        rows.append({"seq": g, "generation": g, "evals": float((g + 1) * 64), "best": best,
                     "best_ever": best_ever, "mean": best + 5.0 + rnd.random(),
                     "sigma": 0.999 ** g, "elapsed": g * 0.05,
                     "metrics": [["extra", rnd.random()]]})
    return rows


class Jobs:
    """Running experiment jobs to write rows into: one registered worker claims them."""

    def __init__(self, port):
        self.c = gl.Client(port)
        self.wid = self.c.call("POST", "/api/v1/workers/register", {
            "name": "ingest-bench", "version": "bench", "kinds": ["experiment"],
            "slots": 64})["worker_id"]

    def running(self) -> tuple[int, int, int]:
        self.c.call("POST", "/api/v1/jobs", {"method": "cma_es", "max_evals": 10**9})
        a = self.c.call("POST", "/api/v1/claim", {
            "worker_id": self.wid, "capabilities": {"kinds": ["experiment"]},
            "wait_ms": 0})["assignment"]
        return a["job"]["id"], a["attempt"], a["lease"]


def body(job, rows) -> bytes:
    _, attempt, lease = job
    return json.dumps({"attempt": attempt, "lease": lease, "rows": rows}).encode()


def stored(c, job_id) -> int:
    return c.call("GET", f"/api/v1/jobs/{job_id}/rows?points=2")["total"]


def run_ingest_phase(port, server, jobs, name, n_clients, rows_per_client, batch_rows, cap_s):
    mine = [jobs.running() for _ in range(n_clients)]
    bodies = []
    for i, job in enumerate(mine):
        rows = gen_rows(seed=zlib.crc32(f"{name}-{i}".encode()), start=0, count=rows_per_client)
        bodies.append([body(job, rows[j:j + batch_rows])
                       for j in range(0, len(rows), batch_rows)])
    lat: list[list[float]] = [[] for _ in range(n_clients)]
    acked = [0] * n_clients
    errors: list[str] = []
    barrier = threading.Barrier(n_clients + 1)
    holder = {}

    def client(i):
        c = gl.Client(port)
        c._connect()
        path = f"/api/v1/jobs/{mine[i][0]}/rows"
        barrier.wait()
        for b in bodies[i]:
            if time.monotonic() > holder["deadline"]:
                break
            t = time.perf_counter()
            st, data = c.request("POST", path, b)
            lat[i].append(time.perf_counter() - t)
            if st == 200:
                acked[i] += json.loads(data)["stored"]
            else:
                errors.append(f"{st}: {data[:200]!r}")
        c.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    trees = [server.tree]
    with bl.PeakSampler(trees) as samp, bl.CpuMeter(trees) as cpu:
        holder["deadline"] = time.monotonic() + cap_s
        t0 = time.perf_counter()
        barrier.wait()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    persisted = sum(stored(jobs.c, j[0]) for j in mine)
    all_lat = [x for l in lat for x in l]
    return {
        "clients": n_clients, "rows_per_request": batch_rows, "format": "json",
        "requests": len(all_lat), "rows_acked": sum(acked),
        "rows_planned": n_clients * rows_per_client, "errors": len(errors),
        "first_error": errors[0] if errors else None, "wall_s": round(wall, 3),
        "latency": bl.summarize_ms(all_lat), "rows_persisted": persisted,
        "stored_matches_acked": persisted == sum(acked),
        "rows_per_s": round(persisted / wall, 1),
        "server_cpu_s": cpu.server_cpu_s, "client_cpu_s": cpu.client_cpu_s,
        "other_cpu_s": cpu.other_cpu_s, "server_peak_rss_mib": samp.peak_mib,
        "server_cpu_ms_per_row": round(1000 * cpu.server_cpu_s / persisted, 4)
        if persisted else None,
    }


def read_series(c, job_id, key, page, steps, trees, cap_s):
    """Reads the whole series of `key`, parsed: every (seq, value) taken out, order checked."""
    got, pages, last, in_order = 0, 0, -1, True
    with bl.PeakSampler(trees) as samp, bl.CpuMeter(trees) as cpu:
        t0 = time.perf_counter()
        deadline = time.monotonic() + cap_s
        start = 0
        while True:
            q = "" if page is None else f"?x=seq&from={start}&to={start + page - 1}"
            st, data = c.request("GET", f"/api/v1/jobs/{job_id}/rows{q}")
            if st != 200:
                raise RuntimeError(f"rows -> {st}: {data[:300]!r}")
            rows = json.loads(data)["rows"]
            series = [(r["seq"], r[key]) for r in rows]
            for s, _ in series:
                in_order &= s == last + 1
                last = s
            got += len(series)
            pages += 1
            if page is None or not rows or start + page >= steps:
                break
            start += page
            if time.monotonic() > deadline:
                break
        wall = time.perf_counter() - t0
    return {"page_size": page if page is not None else "unpaged", "requests": pages,
            "values": got, "complete": got == steps, "in_order_0_to_n": in_order,
            "wall_s": round(wall, 4), "values_per_s": round(got / wall, 1),
            "server_cpu_s": cpu.server_cpu_s, "client_cpu_s": cpu.client_cpu_s,
            "other_cpu_s": cpu.other_cpu_s, "server_peak_rss_mib": samp.peak_mib}


def run_history_phase(port, server, jobs, steps, page_sizes, cap_s):
    job = jobs.running()
    rnd = random.Random(42)
    per_req = 1000
    bodies = [body(job, [{"seq": s, "best": 100.0 * math.exp(-s / 20000.0) + rnd.random()}
                         for s in range(s0, min(steps, s0 + per_req))])
              for s0 in range(0, steps, per_req)]
    c = gl.Client(port)
    trees = [server.tree]
    lat, errors = [], 0
    with bl.PeakSampler(trees) as samp, bl.CpuMeter(trees) as cpu:
        t0 = time.perf_counter()
        for b in bodies:
            t = time.perf_counter()
            st, _ = c.request("POST", f"/api/v1/jobs/{job[0]}/rows", b)
            lat.append(time.perf_counter() - t)
            errors += st != 200
        load_wall = time.perf_counter() - t0
    load = {"steps": steps, "values_per_request": per_req, "requests": len(bodies),
            "errors": errors, "wall_s": round(load_wall, 3),
            "values_per_s": round(steps / load_wall, 1), "latency": bl.summarize_ms(lat),
            "server_cpu_s": cpu.server_cpu_s, "other_cpu_s": cpu.other_cpu_s,
            "server_peak_rss_mib": samp.peak_mib, "values_persisted": stored(c, job[0])}
    reads = [read_series(c, job[0], "best", p, steps, trees, cap_s)
             for p in page_sizes + [None]]
    # GAIA's own history figure reads whole generation rows: 8 metrics per step.
    full = jobs.running()
    for s0 in range(0, steps, 500):
        c.request("POST", f"/api/v1/jobs/{full[0]}/rows",
                  body(full, gen_rows(7, s0, min(500, steps - s0))))
    reads_8 = read_series(c, full[0], "best", None, steps, trees, cap_s)
    reads_8["metrics_per_step"] = 8
    c.close()
    return {"load": load, "reads": reads, "read_8_metrics": reads_8}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts, < 2 min")
    ap.add_argument("--batch-rows", type=int, default=125,
                    help="rows per request (default 125: MLflow's largest batch)")
    ap.add_argument("--wait-quiet", type=float, default=None,
                    help="wait up to this many s for an idle machine first "
                         "(default 0 in --quick, 20 otherwise)")
    a = ap.parse_args()
    mode = "quick" if a.quick else "default"
    prof = dict(PROFILES[mode], batch_rows=a.batch_rows)
    workdir = tempfile.mkdtemp(prefix="peer-gaia-ingest-")
    t_start = time.monotonic()
    wq = a.wait_quiet if a.wait_quiet is not None else (0 if a.quick else 20)
    quiet = bl.wait_quiet(wq) if wq > 0 else None
    out = {"bench": "gaia_ingest", "mode": mode, "machine": bl.machine_info(),
           "versions": {"gaia": gl.gaia_version()}, "profile": prof, "quiet_check": quiet}
    server, port, startup = gl.start_server(workdir)
    res = {"startup_s": round(startup, 3)}
    try:
        time.sleep(1.0)
        res["server_idle_mem"] = bl.tree_mem(server.tree(), full=True)
        jobs = Jobs(port)
        phases = {}
        for name, n, rows, br in [("batch_n1", 1, prof["n1_rows"], prof["batch_rows"]),
                                  ("batch_n8", 8, prof["n8_rows"], prof["batch_rows"]),
                                  ("single_n1", 1, prof["single_reqs"], 1)]:
            bl.log(f"  gaia {name}: {n} client(s) x {rows} rows, {br} rows/request")
            ph = run_ingest_phase(port, server, jobs, name, n, rows, br, prof["phase_cap_s"])
            phases[name] = ph
            bl.log(f"    -> {ph['rows_per_s']} rows/s, p50 {ph['latency'].get('p50_ms')} ms, "
                   f"p99 {ph['latency'].get('p99_ms')} ms, errors {ph['errors']}")
        bl.log(f"  gaia history: {prof['history_steps']} steps of one metric")
        hist = run_history_phase(port, server, jobs, prof["history_steps"],
                                 prof["read_page_sizes"], prof["phase_cap_s"])
        phases["history"] = hist
        for r in hist["reads"] + [hist["read_8_metrics"]]:
            bl.log(f"    read page={r['page_size']}: {r['wall_s']} s for {r['values']} values")
        res["phases"] = phases
        res["server_end_mem"] = bl.tree_mem(server.tree(), full=True)
    except Exception as e:  # noqa: BLE001
        res["error"] = repr(e)[:2000]
        bl.log(f"error: {e!r}")
    finally:
        res["server_stop"] = server.stop()
        out["total_s"] = round(time.monotonic() - t_start, 1)
        shutil.rmtree(workdir, ignore_errors=True)
    out["configs"] = [res]
    bl.emit(out)


if __name__ == "__main__":
    main()
