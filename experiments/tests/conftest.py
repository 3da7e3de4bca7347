import json
import os
import subprocess
import sys
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # as run_all.py does
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402

EXPERIMENTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(EXPERIMENTS))


def run_script(args, *, params=None, out_dir=None, timeout=300, env_extra=None):
    """Run run_all.py with this interpreter; returns CompletedProcess (text, utf-8)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
    if params is not None:
        env["GAIA_JOB_PARAMS"] = params if isinstance(params, str) else json.dumps(params)
    if out_dir is not None:
        env["GAIA_OUTPUT_DIR"] = str(out_dir)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(EXPERIMENTS / "run_all.py"), *map(str, args)], cwd=EXPERIMENTS,
                          env=env, capture_output=True, text=True, encoding="utf-8", timeout=timeout)


def final_of(stdout: str) -> dict:
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("@gaia "), last
    return json.loads(last[len("@gaia "):])["final"]


def gen_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("Gen ")]


@pytest.fixture
def script():
    return run_script
