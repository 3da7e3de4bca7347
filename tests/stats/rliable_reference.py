#!/usr/bin/env python3
"""rliable's numbers for GAIA's comparison test (tests/compare.rs).

Reads JSON cases on stdin and prints, per case, rliable 1.2's point estimates and 95 %
percentile stratified bootstrap intervals of the four aggregates (median, IQM, mean,
optimality gap), the probability of improvement of each pair, and the performance profile at
the given taus. Each method's scores come as one list per task; null (NaN) runs are left out
of their task, and every task must then hold the same number of runs (rliable takes a
runs x tasks matrix).
"""

import json
import sys

import numpy as np
from rliable import library as rly
from rliable import metrics


def matrix(tasks):
    cols = [[v for v in task if v is not None and np.isfinite(v)] for task in tasks]
    n = {len(c) for c in cols}
    if len(n) != 1:
        raise SystemExit(f"tasks hold different run counts after dropping NaN: {sorted(n)}")
    return np.array(cols, dtype=float).T  # runs x tasks


def aggregates(x):
    return np.array([metrics.aggregate_median(x), metrics.aggregate_iqm(x),
                     metrics.aggregate_mean(x), metrics.aggregate_optimality_gap(x)])


def main():
    cases = json.load(sys.stdin)["cases"]
    out = {}
    for case in cases:
        reps = case["reps"]
        scores = {m: matrix(t) for m, t in case["methods"].items()}
        np.random.seed(0)
        points, cis = rly.get_interval_estimates(scores, aggregates, reps=reps)
        agg = {m: {"point": points[m].tolist(), "low": cis[m][0].tolist(), "high": cis[m][1].tolist()}
               for m in scores}
        pairs = {f"{x},{y}": (scores[x], scores[y]) for x, y in case["pairs"]}
        np.random.seed(0)
        points, cis = rly.get_interval_estimates(pairs, metrics.probability_of_improvement, reps=reps)
        poi = {k: {"point": float(points[k]), "low": float(np.ravel(cis[k])[0]), "high": float(np.ravel(cis[k])[1])}
               for k in pairs}
        taus = np.array(case["taus"], dtype=float)
        np.random.seed(0)
        profiles, bands = rly.create_performance_profile(scores, taus, reps=reps)
        prof = {m: {"point": profiles[m].tolist(), "low": bands[m][0].tolist(), "high": bands[m][1].tolist()}
                for m in scores}
        out[case["name"]] = {"aggregates": agg, "improvement": poi, "profile": prof}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
