"""Property-based API testing: Schemathesis generates requests for every operation of the
OpenAPI document (examples, boundary and invalid values, random ones, and chains of calls) and
sends them to a live `gaia serve`. Checked on every answer: never a 5xx, only documented status
codes and content types, bodies that match their schema, invalid requests refused, a 405 that
says which methods are allowed, auth that is not ignored. Not checked: that every schema-valid
request is accepted (`positive_data_acceptance`): the server checks more than a schema can say
(an experiment needs a method, a name must be a name), and answers those with a clear 400.

A short run here (GAIA_SCHEMATHESIS_EXAMPLES, default 5 per operation); benches/schemathesis.sh
runs a longer one and prints its figures.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from conftest import REPO, Server, start_server

EXAMPLES = os.environ.get("GAIA_SCHEMATHESIS_EXAMPLES", "5")
HERE = Path(__file__).resolve().parent


@pytest.fixture()
def st_server(binary: Path, tmp_path: Path) -> Iterator[Server]:
    # A server of its own: generated requests cancel, revoke and register at random.
    s = start_server(binary, tmp_path / "data")
    with s.client() as c:
        # Something for generated ids and names to find.
        c.submit(method="cma_es", max_evals=100, seed=1)
        c.submit_study("st-study", method=["cma_es"], seeds=[1, 2], max_evals=100)
    yield s
    s.stop()


def run_schemathesis(server: Server, examples: str, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"), "run", str(REPO / "docs" / "openapi.json"),
        "--url", server.url,
        "-H", f"Authorization: Bearer {server.token}",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", examples,
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        "--no-color", *extra,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "st_hooks", "PYTHONPATH": str(HERE)}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=server.data_dir.parent)


def test_every_operation_holds_to_the_document(st_server: Server) -> None:
    r = run_schemathesis(st_server, EXAMPLES)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-20000:]
    assert "Tested: " in out and "53/53" in out or "Selected:" in out, out[-3000:]
    st_server.stop()
    assert st_server.proc.returncode == 0, "the server did not survive the run"
