#!/usr/bin/env python3
"""GAIA dispatch benchmark, measured as the peers' `celery_dispatch.py` measures Celery + Redis.

One release `gaia serve` and one `gaia work --slots 2` (the Celery worker's `-c 2`) on loopback,
driven by one Python client over keep-alive HTTP/1.1 (http.client), with the same phases, counts
and spacing as celery_dispatch.py:

  (a) latency     : LAT_N built-in `hash` jobs submitted 20 ms apart on an absolute schedule to an
                    idle worker; latency = the job's first instruction on the worker (the
                    worker's own timestamp, `attempts[-1].worker_started_us`, same clock as the
                    client's time.time() taken before the submit call) - submit.
  (a2) roundtrip  : RT_N sequential submit -> the job's end seen by the client (on the live
                    event stream, opened once: Celery's result.get() listens on pub/sub).
  (b) throughput  : THR_N no-op jobs submitted ONE PER REQUEST, as apply_async does, from
                    --submitters threads of this one process (each submit is answered only once
                    it is durable on disk; Celery's once Redis holds it in memory), the worker
                    consuming meanwhile; first submit -> every job succeeded. Also, labelled,
                    the same jobs in batches of 1,000 per request (GAIA's best case).
  (b2) drain      : THR_N jobs queued while no worker runs; the clock starts when the worker is
                    started (so it includes the worker's start-up) and stops when all succeeded.
  (c) spawn       : like (a), (b), (b2) with experiment jobs run by `--python /bin/true`
                    (a process started per job, as Celery's `spawn` task runs `true`); (c)'s
                    latency is submit -> the process running (exec done, worker's clock).

The last line on stdout is one JSON object with all the figures. Needs PEERS_DIR (the peers'
benchlib.py) and GAIA_BIN (default: target/release/gaia).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import tempfile
import threading
import time

import gaialib as gl
from gaialib import bl

PROFILES = {
    "quick": dict(lat_n=100, rt_n=50, thr_n=1000, spawn_lat_n=100, spawn_thr_n=300,
                  spacing_s=0.020, cap_s=60),
    "default": dict(lat_n=300, rt_n=200, thr_n=5000, spawn_lat_n=300, spawn_thr_n=2000,
                    spacing_s=0.020, cap_s=120),
}


def hash_job(i) -> dict:
    return {"kind": "hash", "input": f"job-{i}"}


def spawn_job(i) -> dict:
    return {"kind": "experiment", "method": "cma_es", "max_evals": 1, "seed": i}


def spaced_submit(c, make, n, spacing, cap_s):
    submits, ids, cost = [], [], []
    t0 = time.perf_counter()
    deadline = time.monotonic() + cap_s
    for i in range(n):
        d = t0 + i * spacing - time.perf_counter()
        if d > 0:
            time.sleep(d)
        if time.monotonic() > deadline:
            break
        ts = time.time()
        c0 = time.perf_counter()
        ids.append(c.call("POST", "/api/v1/jobs", make(i))["id"])
        cost.append(time.perf_counter() - c0)
        submits.append(ts)
    return submits, ids, cost


def wait_jobs(c, ids, cap_s):
    out = []
    deadline = time.monotonic() + cap_s
    for i in ids:
        while True:
            j = c.call("GET", f"/api/v1/jobs/{i}")
            if j["state"] not in ("queued", "running") or time.monotonic() > deadline:
                out.append(j)
                break
            time.sleep(0.005)
    return out


def latency_phase(c, make, n, spacing, cap_s, trees):
    with bl.PeakSampler(trees) as samp, bl.CpuMeter(trees) as cpu:
        submits, ids, cost = spaced_submit(c, make, n, spacing, cap_s)
        jobs = wait_jobs(c, ids, cap_s)
    ok = [j["state"] == "succeeded" for j in jobs]
    start = [gl.worker_started(j) for j in jobs]
    lat = [s - t for s, t in zip(start, submits) if s is not None]
    return {"tasks": len(jobs), "succeeded": sum(ok), "spacing_ms": spacing * 1000,
            "submit_to_start": bl.summarize_ms(lat),
            "client_submit_call": bl.summarize_ms(cost),
            "server_plus_worker_cpu_s": cpu.server_cpu_s, "client_cpu_s": cpu.client_cpu_s,
            "other_cpu_s": cpu.other_cpu_s, "peak_rss_mib": samp.peak_mib}


class Ends:
    """The live event stream, opened once: job ids seen ending, with when."""

    def __init__(self, port):
        self.seen = {}
        self.cond = threading.Condition()
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.conn.request("GET", "/api/v1/events?stream=1&rows=0",
                          headers={"Authorization": f"Bearer {gl.TOKEN}",
                                   "Accept": "text/event-stream"})
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.resp = self.conn.getresponse()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    return
                if not line.startswith(b"data: "):
                    continue
                try:
                    v = json.loads(line[6:])
                except ValueError:
                    continue
                if isinstance(v, dict) and "spec" in v and v.get("state") in (
                        "succeeded", "failed", "cancelled", "timed_out", "lost"):
                    with self.cond:
                        self.seen[v["id"]] = time.perf_counter()
                        self.cond.notify_all()
        except (OSError, ValueError, http.client.HTTPException, AttributeError):
            # AttributeError: the stream was closed under the reader (http.client drops its
            # file object on close), which is how a phase ends.
            return

    def wait(self, job_id, timeout):
        with self.cond:
            self.cond.wait_for(lambda: job_id in self.seen, timeout)
            return self.seen.get(job_id)

    def close(self):
        self.conn.close()


def roundtrip_phase(c, port, n, cap_s):
    ends = Ends(port)
    time.sleep(0.3)
    rts = []
    deadline = time.monotonic() + cap_s
    for i in range(n):
        if time.monotonic() > deadline:
            break
        t = time.perf_counter()
        jid = c.call("POST", "/api/v1/jobs", hash_job(f"rt{i}"))["id"]
        done = ends.wait(jid, cap_s)
        if done is None:
            raise RuntimeError(f"job {jid} did not end within {cap_s} s")
        rts.append(done - t)
    ends.close()
    return {"tasks": len(rts), "submit_to_result": bl.summarize_ms(rts)}


def submit_each(port, make, n, submitters):
    """n jobs, one per request, from `submitters` threads (one connection each)."""
    errors = []

    def run(k):
        cc = gl.Client(port)
        try:
            for i in range(k, n, submitters):
                cc.call("POST", "/api/v1/jobs", make(i))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        cc.close()

    ts = [threading.Thread(target=run, args=(k,)) for k in range(submitters)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError(errors[0])


def submit_batches(c, make, n, per=1000):
    for s in range(0, n, per):
        c.call("POST", "/api/v1/jobs/batch", {"jobs": [make(i) for i in range(s, min(n, s + per))]})


def throughput_phase(c, port, make, n, cap_s, trees, how, submitters, restart=None):
    """how: 'each' (one job per request), 'batch' (1,000 per request) or 'drain' (queued while
    no worker runs; `restart()` starts it and the clock)."""
    before = gl.succeeded(c)
    if how == "drain":
        e0 = time.perf_counter()
        submit_batches(c, make, n)
        pre = time.perf_counter() - e0
    with bl.PeakSampler(trees) as samp, bl.CpuMeter(trees) as cpu:
        t0 = time.perf_counter()
        if how == "drain":
            restart()
        elif how == "each":
            submit_each(port, make, n, submitters)
        else:
            submit_batches(c, make, n)
        t_enq = time.perf_counter()
        deadline = time.monotonic() + cap_s
        done = 0
        while time.monotonic() < deadline:
            done = gl.succeeded(c) - before
            if done >= n:
                break
            time.sleep(0.01)
        t_done = time.perf_counter()
    total = t_done - t0
    res = {"tasks": n, "succeeded": done, "complete": done >= n, "mode": how,
           "all_results_ready_s": round(total, 3), "jobs_per_s": round(done / total, 1),
           "server_plus_worker_cpu_s": cpu.server_cpu_s, "client_cpu_s": cpu.client_cpu_s,
           "other_cpu_s": cpu.other_cpu_s, "peak_rss_mib": samp.peak_mib}
    if how == "drain":
        res.update({"enqueue_s": round(pre, 3), "enqueue_per_s": round(n / pre, 1)})
    else:
        res.update({"enqueue_s": round(t_enq - t0, 3),
                    "enqueue_per_s": round(n / (t_enq - t0), 1)})
    if how == "each":
        res["submitters"] = submitters
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts, < 2 min")
    ap.add_argument("--submitters", type=int, default=8,
                    help="threads submitting one job per request in (b) and (c) (default 8)")
    ap.add_argument("--wait-quiet", type=float, default=None,
                    help="wait up to this many s for an idle machine first "
                         "(default 0 in --quick, 20 otherwise)")
    a = ap.parse_args()
    mode = "quick" if a.quick else "default"
    prof = PROFILES[mode]
    workdir = tempfile.mkdtemp(prefix="peer-gaia-dispatch-")
    t_start = time.monotonic()
    wq = a.wait_quiet if a.wait_quiet is not None else (0 if a.quick else 20)
    quiet = bl.wait_quiet(wq) if wq > 0 else None
    out = {"bench": "gaia_dispatch", "mode": mode, "machine": bl.machine_info(),
           "versions": {"gaia": gl.gaia_version()}, "profile": prof, "quiet_check": quiet,
           "pools": []}
    server, port, startup = gl.start_server(workdir)
    worker = None
    res = {"pool": "gaia --slots 2", "concurrency": 2, "server_startup_s": round(startup, 3)}
    args = ["--slots", "2", "--kinds", "hash,experiment", "--python", "/bin/true"]
    try:
        c = gl.Client(port)
        t0 = time.monotonic()
        worker = gl.start_worker(workdir, port, "bench", args)
        gl.wait_registered(c, worker, "bench")
        res["worker_ready_s"] = round(time.monotonic() - t0, 3)
        for j in wait_jobs(c, [c.call("POST", "/api/v1/jobs", hash_job(f"w{i}"))["id"]
                               for i in range(8)], 30):
            assert j["state"] == "succeeded", j
        time.sleep(1.0)
        res["worker_idle_mem"] = bl.tree_mem(worker.tree(), full=True)
        res["server_idle_mem"] = bl.tree_mem(server.tree(), full=True)
        trees = [lambda: worker.tree(), server.tree]

        def restart():
            nonlocal worker
            worker = gl.start_worker(workdir, port, "bench", args)

        def stopped_worker():
            nonlocal worker
            worker.stop()
            while any(w["name"] == "bench" and w["state"] != "offline"
                      for w in c.call("GET", "/api/v1/workers")["workers"]):
                time.sleep(0.05)

        def settle():
            gl.wait_registered(c, worker, "bench")
            time.sleep(0.5)

        bl.log(f"  gaia: (a) latency, {prof['lat_n']} jobs {prof['spacing_s']*1000:.0f} ms apart")
        res["a_latency"] = latency_phase(c, hash_job, prof["lat_n"], prof["spacing_s"],
                                         prof["cap_s"], trees)
        bl.log(f"    -> p50 {res['a_latency']['submit_to_start']['p50_ms']} ms, "
               f"p99 {res['a_latency']['submit_to_start']['p99_ms']} ms")
        res["a2_roundtrip"] = roundtrip_phase(c, port, prof["rt_n"], prof["cap_s"])
        bl.log(f"    roundtrip p50 {res['a2_roundtrip']['submit_to_result'].get('p50_ms')} ms")
        time.sleep(0.5)

        for key, how in (("b_throughput", "each"), ("b_throughput_batch", "batch")):
            bl.log(f"  gaia: (b) throughput, {prof['thr_n']} no-op jobs, {how}")
            res[key] = throughput_phase(c, port, hash_job, prof["thr_n"], prof["cap_s"], trees,
                                        how, a.submitters)
            bl.log(f"    -> {res[key]['jobs_per_s']} jobs/s (enqueue {res[key]['enqueue_per_s']}/s)")
            time.sleep(0.5)
        bl.log(f"  gaia: (b2) drain, {prof['thr_n']} no-op jobs queued, then the worker started")
        stopped_worker()
        res["b2_drain"] = throughput_phase(c, port, hash_job, prof["thr_n"], prof["cap_s"],
                                           trees, "drain", a.submitters, restart)
        bl.log(f"    -> {res['b2_drain']['jobs_per_s']} jobs/s")
        settle()

        bl.log(f"  gaia: (c) spawn latency, {prof['spawn_lat_n']} jobs")
        res["c_spawn_latency"] = latency_phase(c, spawn_job, prof["spawn_lat_n"],
                                               prof["spacing_s"], prof["cap_s"], trees)
        bl.log(f"    -> process running p50 {res['c_spawn_latency']['submit_to_start']['p50_ms']} ms")
        time.sleep(0.5)
        bl.log(f"  gaia: (c) spawn throughput, {prof['spawn_thr_n']} jobs")
        res["c_spawn_throughput"] = throughput_phase(c, port, spawn_job, prof["spawn_thr_n"],
                                                     prof["cap_s"], trees, "each", a.submitters)
        bl.log(f"    -> {res['c_spawn_throughput']['jobs_per_s']} jobs/s")
        time.sleep(0.5)
        stopped_worker()
        res["c2_spawn_drain"] = throughput_phase(c, port, spawn_job, prof["spawn_thr_n"],
                                                 prof["cap_s"], trees, "drain", a.submitters,
                                                 restart)
        bl.log(f"    drain-only spawn -> {res['c2_spawn_drain']['jobs_per_s']} jobs/s")
        res["worker_end_mem"] = bl.tree_mem(worker.tree(), full=True)
        res["server_end_mem"] = bl.tree_mem(server.tree(), full=True)
        c.close()
    except Exception as e:  # noqa: BLE001
        res["error"] = repr(e)[:2000]
        bl.log(f"error: {e!r}")
    finally:
        if worker is not None:
            res["worker_stop"] = worker.stop()
        res["server_stop"] = server.stop()
        out["total_s"] = round(time.monotonic() - t_start, 1)
        shutil.rmtree(workdir, ignore_errors=True)
    out["pools"].append(res)
    bl.emit(out)


if __name__ == "__main__":
    main()
