"""Fixtures: a real `gaia serve` (port 0, a temp data dir) and a real `gaia work` running the
stand-in experiments, both the `gaia` binary the Rust build made (as tests/helper/mod.rs starts
them for the Rust end-to-end tests)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

import gaia

REPO = Path(__file__).resolve().parents[2]
TOKEN = "python-test-admin-token-0123"


def gaia_bin() -> Path:
    """The `gaia` binary under test: GAIA_BIN, else the debug build in the target dir."""
    if os.environ.get("GAIA_BIN"):
        return Path(os.environ["GAIA_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    return target / "debug" / "gaia"


def strict() -> bool:
    flag = lambda v: os.environ.get(v, "") not in ("", "0", "false")  # noqa: E731
    return flag("CI") or flag("GAIA_TESTS_STRICT")


@pytest.fixture(scope="session")
def binary() -> Path:
    path = gaia_bin()
    if not path.is_file():
        message = f"no gaia binary at {path}: run `cargo build -p gaia-cli` first"
        if strict():
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class Server:
    """A running `gaia serve`."""

    proc: subprocess.Popen[str]
    url: str
    token: str
    data_dir: Path

    def client(self, token: Optional[str] = None) -> gaia.Client:
        return gaia.Client(self.url, token or self.token)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(binary: Path, data_dir: Path, *args: str) -> Server:
    proc = subprocess.Popen(
        [str(binary), "serve", "--bind", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir), *args],
        env={**os.environ, "GAIA_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            url = m.group(1)
            break
        if time.monotonic() > deadline:
            break
    if url is None:
        proc.kill()
        raise RuntimeError("gaia serve did not say where it listens")
    # Keep draining stdout so the server never blocks on a full pipe.
    out = proc.stdout
    threading.Thread(target=lambda: [None for _ in out], daemon=True).start()
    return Server(proc, url.rstrip("/"), TOKEN, data_dir)


@pytest.fixture(scope="session")
def server(binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(binary, tmp_path_factory.mktemp("serve") / "data")
    yield s
    s.stop()


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_worker(binary: Path, server: Server, state_dir: Path, name: str, *args: str) -> Worker:
    proc = subprocess.Popen(
        [
            str(binary), "work", "--name", name, "--gpu", "none", "--slots", "2",
            "--python", "python3",
            "--experiments-dir", str(REPO / "tests" / "fixtures" / "fake-experiments"),
            "--state-dir", str(state_dir), *args,
        ],
        env={**os.environ, "GAIA_SERVER": server.url, "GAIA_TOKEN": server.token},
        stdout=subprocess.DEVNULL,
    )
    return Worker(proc)


@pytest.fixture(scope="session")
def worker(binary: Path, server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    w = start_worker(binary, server, tmp_path_factory.mktemp("work"), "py-worker")
    with server.client() as c:
        deadline = time.monotonic() + 30
        while not any(x["name"] == "py-worker" and x["state"] != "offline" for x in c.workers()):
            if time.monotonic() > deadline or w.proc.poll() is not None:
                raise RuntimeError("gaia work did not register")
            time.sleep(0.05)
    yield w
    w.stop()


@pytest.fixture()
def farm(server: Server) -> Iterator[gaia.Client]:
    """A client of the session's server, with the admin token."""
    with server.client() as c:
        yield c


def fake(gens: int = 5, delay: float = 0.0, mode: str = "ok") -> dict:
    """Params of the stand-in experiment (tests/fixtures/fake-experiments/run_all.py)."""
    return {"gens": gens, "delay": delay, "mode": mode}

