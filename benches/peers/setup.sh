#!/usr/bin/env bash
# Sets up what the peers' benchmarks need, as the peers' README did (Debian 12):
# redis-server from apt if missing, and a venv (default /tmp/peer-venv) with MLflow, Celery with
# Redis, Optuna, psutil and requests. Safe to run again: it only installs what is missing.
set -euo pipefail
VENV=${PEER_VENV:-/tmp/peer-venv}
if ! command -v redis-server >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends redis-server
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import mlflow, celery, redis, optuna, psutil, requests' 2>/dev/null; then
  "$VENV/bin/pip" install -q mlflow "celery[redis]" optuna psutil requests
fi
echo "redis-server: $(redis-server --version | cut -d' ' -f3)"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
print(", ".join(f"{p} {md.version(p)}" for p in ("mlflow", "celery", "kombu", "redis", "optuna", "psutil")))
PY
