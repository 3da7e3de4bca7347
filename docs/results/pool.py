"""One method's runs pooled from several studies' exports (a study whose seeds were run in two
parts, on two servers, which `gaia compare` cannot put together): the runs, how many were
solved (the experiment's own verdict) and reached the target in training, the IQM of the
normalised final score and the ERT to the target, each with a 95 % percentile-bootstrap interval
over the runs (2,000 resamples). The estimators are `gaia compare`'s (docs/COMPARE.md: the IQM
trims a quarter of the runs from each end; the ERT is the evaluations all runs spent — until the
target for those that reached it, their whole run for the others — over the number that
reached it); standard library only, with Python's own random numbers, so an interval's ends can
differ from `gaia compare`'s by a little.

    python3 docs/results/pool.py cma_es docs/results/lunar-scaling docs/results/lunar-scaling-b \
        --vs docs/results/lunar-orig cma_es

`--vs PREFIX METHOD` adds P(a run of that method > a pooled run), as `cross_poi.py` computes it.
Each PREFIX names the files `run.sh export` wrote: PREFIX-scores.json,
PREFIX-compare-solved.json and PREFIX-verdicts.tsv.
"""

import csv
import json
import math
import random
import statistics
import sys

from cross_poi import poi_interval


def iqm(xs):
    xs = sorted(xs)
    cut = len(xs) // 4
    mid = xs[cut:len(xs) - cut]
    return sum(mid) / len(mid)


def ert(runs):
    reached = sum(1 for r in runs if r["reached"])
    return math.inf if reached == 0 else sum(r["spent"] for r in runs) / reached


def load(prefix, method):
    scores = json.load(open(f"{prefix}-scores.json"))
    target = json.load(open(f"{prefix}-compare-solved.json"))["target"]
    records = {r["seed"]: r["normalised"] for r in scores["records"] if r["method"] == method}
    cells = [c for m in target["methods"] if m["method"] == method for c in m["cells"]]
    reach = sorted(e for c in cells for e in c["evals"])
    runs = []
    with open(f"{prefix}-verdicts.tsv") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["method"] != method or row["solved"] == "None":
                continue  # another method, or a run that never ended (cancelled)
            best = float(row["best_ever"])
            runs.append({"seed": int(row["seed"]), "score": records[int(row["seed"])],
                         "solved": row["solved"] == "True", "evals": int(row["evals"]),
                         "reached": best >= target["envs"][0]["target"], "best": best})
    # Evaluations to reach the target in training: `gaia compare` lists them per cell, in no
    # run order; the runs that reached it are matched to them by their best-ever order, which
    # only matters for the ERT's resampling (its estimate uses their sum).
    hits = [r for r in runs if r["reached"]]
    if len(hits) != len(reach):
        sys.exit(f"{prefix}: {len(hits)} runs reached the target but the comparison lists "
                 f"{len(reach)}")
    for r, e in zip(sorted(hits, key=lambda r: r["evals"]), reach):
        r["spent"] = e
    for r in runs:
        r.setdefault("spent", r["evals"])
    return runs


def interval(stat, runs, rng, n=2000):
    boot = sorted(stat(rng.choices(runs, k=len(runs))) for _ in range(n))
    return boot[int(0.025 * n)], boot[int(0.975 * n) - 1]


def main():
    args = sys.argv[1:]
    vs = None
    if "--vs" in args:
        i = args.index("--vs")
        vs, args = args[i + 1:i + 3], args[:i] + args[i + 3:]
    if len(args) < 2 or (vs is not None and len(vs) != 2):
        sys.exit(__doc__)
    method, prefixes = args[0], args[1:]
    runs = [r for p in prefixes for r in load(p, method)]
    rng = random.Random(0)
    q = iqm([r["score"] for r in runs])
    ql, qh = interval(lambda rs: iqm([r["score"] for r in rs]), runs, rng)
    e = ert(runs)
    el, eh = interval(ert, runs, rng)
    solved = sorted(r["evals"] for r in runs if r["solved"])
    print(f"{method}: {len(runs)} runs (seeds {', '.join(str(r['seed']) for r in runs)})")
    print(f"  solved {len(solved)}/{len(runs)}"
          + (f", after {', '.join(f'{x:,}' for x in solved)} evaluations "
             f"(median {statistics.median(solved):,.0f})" if solved else ""))
    print(f"  reached the target in training {sum(r['reached'] for r in runs)}/{len(runs)}")
    print(f"  IQM {q:.2f} [{ql:.2f}, {qh:.2f}]")
    print(f"  ERT {e:,.0f} [{el:,.0f}, {eh:,.0f}] evaluations")
    if vs:
        other = [r["score"] for r in load(vs[0], vs[1])]
        mine = [r["score"] for r in runs]
        p, lo, hi = poi_interval(other, mine)
        print(f"  P({vs[1]} of {vs[0].rsplit('/', 1)[-1]} > pooled) = {p:.2f} "
              f"[{lo:.2f}, {hi:.2f}] ({len(other)} vs {len(mine)} runs)")


if __name__ == "__main__":
    main()
