"""P(a run of method A scores higher than a run of method B) across two studies' exported
scores (`gaia export --study S --json --figure scores`), for methods run on different servers,
which `gaia compare` (one server) cannot put side by side. Same estimator as `gaia compare`'s
probability of improvement (Mann–Whitney, ties count ½) and the same interval: a percentile
bootstrap over each method's runs, 2,000 resamples (docs/COMPARE.md); standard library only,
with Python's own random numbers, so an interval's ends can differ from `gaia compare`'s by about
0.01 (CMA-ES vs curriculum in lunar-orig: 0.77 [0.53, 0.96] here, [0.52, 0.96] there).

    python3 docs/results/cross_poi.py docs/results/lunar-orig-scores.json cma_es \
        docs/results/lunar-orig-nm-scores.json neuromod_cma_es
"""

import json
import random
import sys


def runs(path, method):
    m = json.load(open(path))["matrices"]
    if method not in m:
        sys.exit(f"{path} has no method {method!r} (it has {', '.join(m)})")
    return [sum(r) / len(r) for r in m[method]]


def poi(x, y):
    return sum((a > b) + 0.5 * (a == b) for a in x for b in y) / (len(x) * len(y))


def poi_interval(x, y, n=2000):
    """P(x > y) and its 95 % percentile-bootstrap interval over each side's runs."""
    rng = random.Random(0)
    boot = sorted(poi(rng.choices(x, k=len(x)), rng.choices(y, k=len(y))) for _ in range(n))
    return poi(x, y), boot[int(0.025 * n)], boot[int(0.975 * n) - 1]


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    x, y = runs(sys.argv[1], sys.argv[2]), runs(sys.argv[3], sys.argv[4])
    p, lo, hi = poi_interval(x, y)
    print(f"P({sys.argv[2]} > {sys.argv[4]}) = {p:.2f} [{lo:.2f}, {hi:.2f}] "
          f"({len(x)} vs {len(y)} runs)")


if __name__ == "__main__":
    main()
