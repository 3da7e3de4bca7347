"""What the GAIA side of the peer comparisons shares: a release `gaia serve` and `gaia work`
started like the peers' servers (own session, stopped by process group, data in a fresh
/tmp/peer-gaia-* dir), and a keep-alive HTTP/1.1 client as lean as the peers' clients.

Measurement helpers (nearest-rank percentiles, CPU accounting, the quiet-machine wait) come from
the peers' own `benchlib.py`, so both sides are measured with the same code: set PEERS_DIR to the
folder holding the peers' scripts (`benches/peers/run.sh` does).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time

PEERS_DIR = os.environ.get("PEERS_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "peers")
sys.path.insert(0, PEERS_DIR)
try:
    import benchlib as bl  # noqa: E402  (the peers' helpers, not ours)
except ImportError as e:  # pragma: no cover - a message for people, not a test
    raise SystemExit(f"cannot import the peers' benchlib.py from {PEERS_DIR} ({e}): "
                     "set PEERS_DIR to the folder with the peers' scripts") from e

TOKEN = "peer-bench-admin-token-0123456789"


def gaia_bin() -> str:
    """The release binary: GAIA_BIN, else target/release/gaia of this checkout."""
    b = os.environ.get("GAIA_BIN")
    if b:
        return b
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    return os.path.join(target, "release", "gaia")


def gaia_version() -> str:
    import subprocess
    return subprocess.run([gaia_bin(), "--version"], capture_output=True,
                          text=True).stdout.strip()


class Client:
    """One keep-alive HTTP/1.1 connection (TCP_NODELAY), JSON bodies."""

    def __init__(self, port: int):
        self.port = port
        self.conn = None
        self.auth = {"Authorization": f"Bearer {TOKEN}"}

    def _connect(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def request(self, method: str, path: str, body: bytes | None = None,
                ctype: str = "application/json"):
        if self.conn is None:
            self._connect()
        headers = dict(self.auth)
        if body is not None:
            headers["Content-Type"] = ctype
        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self._connect()
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        return resp.status, data

    def call(self, method: str, path: str, obj=None):
        body = None if obj is None else json.dumps(obj).encode()
        st, data = self.request(method, path, body)
        if st >= 300:
            raise RuntimeError(f"{method} {path} -> {st}: {data[:300]!r}")
        return json.loads(data) if data else None

    def close(self):
        if self.conn is not None:
            self.conn.close()


def start_server(workdir: str, startup_timeout: float = 30.0):
    """`gaia serve` on a free port with its data in workdir; returns (Proc, port, startup_s)."""
    port = bl.free_port()
    env = dict(os.environ, GAIA_TOKEN=TOKEN)
    t0 = time.monotonic()
    proc = bl.Proc([gaia_bin(), "serve", "--bind", "127.0.0.1", "--port", str(port),
                    "--data-dir", os.path.join(workdir, "data")],
                   os.path.join(workdir, "server.log"), env=env)
    deadline = t0 + startup_timeout
    while time.monotonic() < deadline and proc.alive():
        try:
            st, _ = Client(port).request("GET", "/healthz")
            if st == 200:
                return proc, port, time.monotonic() - t0
        except OSError:
            time.sleep(0.02)
    tail = proc.log_tail()
    proc.stop()
    raise RuntimeError(f"gaia serve did not come up:\n{tail}")


def start_worker(workdir: str, port: int, name: str, args: list[str]):
    """`gaia work` against the server, its state under workdir; returns the Proc once the
    worker has registered."""
    env = dict(os.environ, GAIA_TOKEN=TOKEN)
    exp = os.path.join(workdir, "experiments")
    os.makedirs(exp, exist_ok=True)
    with open(os.path.join(exp, "run_all.py"), "w") as f:
        f.write("# the benchmark's worker runs --python /bin/true: nothing is read from here\n")
    proc = bl.Proc([gaia_bin(), "work", "--server", f"http://127.0.0.1:{port}",
                    "--name", name, "--gpu", "none", "--experiments-dir", exp,
                    "--state-dir", os.path.join(workdir, f"worker-{name}")] + args,
                   os.path.join(workdir, f"worker-{name}.log"), env=env)
    return proc


def wait_registered(c: Client, proc, name: str, timeout: float = 30.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not proc.alive():
            raise RuntimeError("gaia work exited:\n" + proc.log_tail())
        ws = c.call("GET", "/api/v1/workers")["workers"]
        if any(w["name"] == name and w["state"] in ("idle", "busy") for w in ws):
            return time.monotonic() - t0
        time.sleep(0.01)
    raise RuntimeError("gaia work did not register:\n" + proc.log_tail())


def succeeded(c: Client) -> int:
    return c.call("GET", "/api/v1/status")["jobs"].get("succeeded", 0)


def worker_started(job: dict) -> float | None:
    """When the job's code started on its worker (s since the epoch, the worker's clock)."""
    att = job.get("attempts") or []
    us = att[-1].get("worker_started_us") if att else None
    return us / 1e6 if us else None
