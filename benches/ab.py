#!/usr/bin/env python3
"""Two builds of GAIA measured back to back: the same benches, old and new interleaved
(old, new, old, new, …), so the machine's drift hits both alike; each run's output is kept with
the machine's other CPU use beside it.

    python3 benches/ab.py --old ../gaia-old --new . [--old-target DIR] [--new-target DIR]
                          [--rounds 3] [--out DIR] [--env K=V …] BENCH [BENCH …]

BENCH is a bench name of `gaia-cli` (ingest, claim, worker, history, heartbeat, dashboard, export)
or `core:parser` for gaia-core's. Each checkout's benches are built first (`cargo bench
--no-run`, with that checkout's target dir: CARGO_TARGET_DIR, else its own `target/`), then run
directly. A run's output goes to OUT/BENCH-{old,new}-rN.txt with a header line:
wall seconds, the bench tree's own CPU seconds, and the other CPU the machine spent meanwhile
(in cores: more than 0.5 means something else ran beside it). Prints an index at the end; the
figures themselves are the benches' own lines. Stdlib only; Linux (/proc/stat).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time


def busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def executables(checkout: str, target: str, benches: list[str]) -> dict[str, str]:
    out = {}
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    for b in benches:
        pkg, name = ("gaia-core", b[5:]) if b.startswith("core:") else ("gaia-cli", b)
        r = subprocess.run(["cargo", "bench", "--no-run", "-p", pkg, "--bench", name],
                           cwd=checkout, env=env, capture_output=True, text=True)
        m = re.findall(r"Executable .*?\((.+?)\)", r.stderr)
        if r.returncode != 0 or not m:
            sys.exit(f"building {b} in {checkout} failed:\n{r.stderr[-3000:]}")
        out[b] = m[-1]
    return out


def run(exe: str, checkout: str, env: dict, path: str) -> str:
    b0, c0 = busy_s(), resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = open("/proc/loadavg").read().split()[:3]
    t0 = time.monotonic()
    r = subprocess.run([exe, "--bench"], cwd=os.path.join(checkout, "gaia-cli"), env=env,
                       capture_output=True, text=True)
    wall = time.monotonic() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    other = max(0.0, busy_s() - b0 - own) / wall
    head = (f"# wall {wall:.1f} s, own CPU {own:.1f} s, other CPU {other:.2f} cores"
            f"{' (* busy)' if other > 0.5 else ''}, load {' '.join(load0)}, exit {r.returncode}")
    with open(path, "w") as f:
        f.write(head + "\n" + r.stdout + ("\n--- stderr tail\n" + r.stderr[-2000:]
                                          if r.returncode else ""))
    return head


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", required=True, help="the old checkout")
    ap.add_argument("--new", required=True, help="the new checkout")
    ap.add_argument("--old-target", help="its target dir (default: its own target/)")
    ap.add_argument("--new-target", help="its target dir (default: CARGO_TARGET_DIR or target/)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--env", action="append", default=[], help="K=V for the bench runs")
    ap.add_argument("benches", nargs="+")
    a = ap.parse_args()
    old, new = os.path.abspath(a.old), os.path.abspath(a.new)
    ot = a.old_target or os.path.join(old, "target")
    nt = a.new_target or os.environ.get("CARGO_TARGET_DIR") or os.path.join(new, "target")
    out = a.out or os.path.join(nt, "ab-results", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ)
    env.update(dict(kv.split("=", 1) for kv in a.env))
    print(f"building benches: old {old} ({ot}), new {new} ({nt})", flush=True)
    exes = {"old": (old, executables(old, ot, a.benches)),
            "new": (new, executables(new, nt, a.benches))}
    for b in a.benches:
        for r in range(1, a.rounds + 1):
            # Old first in odd rounds, new first in even ones.
            for side in (("old", "new") if r % 2 else ("new", "old")):
                checkout, ex = exes[side]
                path = os.path.join(out, f"{b.replace(':', '-')}-{side}-r{r}.txt")
                head = run(ex[b], checkout, env, path)
                print(f"{b} {side} r{r}: {head[2:]}", flush=True)
    print(f"outputs in {out}")


if __name__ == "__main__":
    main()
