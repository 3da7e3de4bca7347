#!/usr/bin/env python3
"""GAIA experiment entry point: ``python run_all.py --method cma_es --env CartPole-v1 --max-evals 20000``.

See README.md and ``python run_all.py --list``. The code lives in the gaia_exp package.
"""

import os
import sys

# One BLAS thread per process: evaluations are already spread over processes, and OpenBLAS's
# own threads make pycma's eigendecompositions 10-20x slower on a busy 2-core machine. Set before
# numpy is imported; an explicit setting in the environment wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# stdout carries only GAIA lines: keep pygame (imported by gymnasium's Box2D envs) from greeting.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

if __name__ == "__main__":
    try:
        from gaia_exp.cli import main
    except ImportError as exc:  # typically: run outside the virtualenv
        print(f"run_all.py: error: {exc}. Install the dependencies: "
              f"python3 -m venv .venv && .venv/bin/pip install -r requirements.txt", file=sys.stderr)
        sys.exit(2)
    sys.exit(main())
