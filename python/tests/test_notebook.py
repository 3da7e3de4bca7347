"""The example notebook (examples/python_client.ipynb) runs top to bottom against a real
server and worker, as a newcomer would run it."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO, Server, start_server, start_worker


@pytest.fixture()
def demo(binary: Path, tmp_path: Path) -> Iterator[Server]:
    server = start_server(binary, tmp_path / "data")
    worker = start_worker(binary, server, tmp_path / "work", "nb-worker")
    yield server
    worker.stop()
    server.stop()


def test_the_example_notebook_runs_top_to_bottom(demo: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAIA_SERVER", demo.url)
    monkeypatch.setenv("GAIA_TOKEN", demo.token)
    nb = nbformat.read(REPO / "examples" / "python_client.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = {
        i: "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in c.get("outputs", []))
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
    }
    text = "\n".join(outputs.values())
    assert "worker(s) online" in text
    assert "succeeded" in text
    assert "gen   5" in text, "follow() printed the live job's rows"
    assert "400 max_evals must be positive" in text
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
