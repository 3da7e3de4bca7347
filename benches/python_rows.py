#!/usr/bin/env python3
"""Rows into DataFrames through the Python client, end to end (HTTP, decoding, the frame):
`job.rows()` over the Arrow stream (pandas and polars), and the JSON answer for comparison;
`study.rows()`. Peak memory is measured in a fresh process per path: the growth of the peak
resident set over what the process held before the call, against the DataFrame's own size.

Run by `cargo bench -p gaia-cli --bench rows` (which starts the server and fills the jobs);
by hand: python/.venv/bin/python benches/python_rows.py URL TOKEN JOB [STUDY]
"""
from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fetch(farm, what: str, target: str):
    if what == "job-arrow-pandas":
        return farm.job(int(target)).rows()
    if what == "job-arrow-polars":
        return farm.job(int(target)).rows(backend="polars")
    if what == "job-json-pandas":
        return farm.job(int(target)).rows(format="json")
    if what == "study-arrow-pandas":
        return farm.study(target).rows()
    raise ValueError(what)


def size_mib(df) -> float:
    if hasattr(df, "memory_usage"):
        return float(df.memory_usage(deep=True).sum()) / 2**20
    return float(df.estimated_size()) / 2**20


def one(url: str, token: str, what: str, target: str) -> dict:
    """One call in this (fresh) process: its time, peak memory growth and the frame's size."""
    import gaia
    import pandas  # noqa: F401  (imported before the baseline, as a notebook has it)
    import polars  # noqa: F401
    import pyarrow  # noqa: F401

    with gaia.Client(url, token) as farm:
        farm.status()  # the connection is open before the baseline
        base = rss_mib()
        t0 = time.perf_counter()
        df = fetch(farm, what, target)
        took = time.perf_counter() - t0
        peak = peak_mib() - base
        return {"rows": len(df), "cols": len(df.columns), "s": took, "peak_mib": peak, "frame_mib": size_mib(df)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(json.dumps(one(*sys.argv[2:6])))
        return
    url, token, job = sys.argv[1:4]
    study = sys.argv[4] if len(sys.argv) > 4 else None
    runs = {"job-arrow-pandas": 7, "job-arrow-polars": 5, "job-json-pandas": 2}
    if study:
        runs["study-arrow-pandas"] = 5
    for what, n in runs.items():
        target = study if what.startswith("study") else job
        results = []
        for _ in range(n):
            out = subprocess.run(
                [sys.executable, __file__, "--one", url, token, what, target],
                check=True, capture_output=True, text=True,
            ).stdout
            results.append(json.loads(out))
        times = sorted(r["s"] for r in results)
        r = results[0]
        peak = max(x["peak_mib"] for x in results)
        print(
            f"{what}: {r['rows']:,} rows x {r['cols']} columns: p50 {statistics.median(times) * 1000:.0f} ms, "
            f"min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms ({n} runs, fresh process each); "
            f"peak memory +{peak:.0f} MiB for a {r['frame_mib']:.0f} MiB frame ({peak / r['frame_mib']:.2f}x)",
            flush=True,
        )


if __name__ == "__main__":
    main()
