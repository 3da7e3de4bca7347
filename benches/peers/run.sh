#!/usr/bin/env bash
# GAIA and its peers measured the same way in the same run: GAIA's peer-shaped benches
# (gaia_dispatch.py, gaia_ingest.py) and the peers' own scripts (celery_dispatch.py,
# mlflow_ingest.py), interleaved round after round (the order flips every round, so drift in
# the machine's load hits both), then one table with both figures, the ratio and the machine's
# other CPU use beside each (compare.py).
#
# Usage: benches/peers/run.sh [--quick] [--rounds N] [--only dispatch|ingest] [OUT_DIR]
#   PEERS_DIR  the peers' scripts (default: ../shared/peers beside the repository); copied to a
#              fresh /tmp dir first, so a read-only folder works
#   GAIA_BIN   the release binary (default: built with `cargo build --release -p gaia-cli`)
#   PEER_VENV  the peers' venv (default /tmp/peer-venv; benches/peers/setup.sh makes it)
#   WAIT_QUIET seconds each script waits for a quiet machine first (default 20; 0 in --quick)
# Not run by CI: it needs Redis, MLflow and Celery and takes ~20 minutes for 3 rounds.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
QUICK=; ROUNDS=3; ONLY=all; OUT=
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=--quick ;;
    --rounds) ROUNDS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    *) OUT=$1 ;;
  esac
  shift
done
"$HERE/setup.sh"
PY=${PEER_VENV:-/tmp/peer-venv}/bin/python
if [ -z "${GAIA_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -q -p gaia-cli)
  GAIA_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/gaia
fi
export GAIA_BIN
SRC=${PEERS_DIR:-$ROOT/../shared/peers}
[ -f "$SRC/celery_dispatch.py" ] || { echo "no peers' scripts in $SRC: set PEERS_DIR" >&2; exit 2; }
WORK=$(mktemp -d /tmp/peer-run-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cp -r "$SRC" "$WORK/peers"
chmod -R u+w "$WORK/peers"
export PEERS_DIR=$WORK/peers
MODE=default; [ -n "$QUICK" ] && MODE=quick
WQ=${WAIT_QUIET:-$([ -n "$QUICK" ] && echo 0 || echo 20)}
OUT=${OUT:-$ROOT/target/peer-results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
echo "results in $OUT ($MODE, $ROUNDS rounds, $GAIA_BIN)"

run() {  # run NAME SCRIPT_PATH ROUND
  local name=$1 script=$2 round=$3 out="$OUT/$1-$MODE-r$3"
  local t0; t0=$(date +%s)
  echo "{\"loadavg_before\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" > "$out.load"
  PYTHONPATH="$HERE:${PYTHONPATH:-}" "$PY" "$script" $QUICK --wait-quiet "$WQ" > "$out.stdout" 2> "$out.log" || true
  tail -n 1 "$out.stdout" > "$out.json"; rm -f "$out.stdout"
  echo "  $name (round $round): $(( $(date +%s) - t0 )) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
}

for r in $(seq 1 "$ROUNDS"); do
  echo "round $r"
  pairs=()
  [ "$ONLY" != ingest ] && pairs+=("gaia_dispatch:$HERE/gaia_dispatch.py celery_dispatch:$PEERS_DIR/celery_dispatch.py")
  [ "$ONLY" != dispatch ] && pairs+=("gaia_ingest:$HERE/gaia_ingest.py mlflow_ingest:$PEERS_DIR/mlflow_ingest.py")
  for pair in "${pairs[@]}"; do
    read -r a b <<<"$pair"
    # Odd rounds GAIA first, even rounds the peer first.
    if [ $((r % 2)) -eq 0 ]; then t=$a; a=$b; b=$t; fi
    run "${a%%:*}" "${a#*:}" "$r"
    run "${b%%:*}" "${b#*:}" "$r"
  done
done
python3 "$HERE/compare.py" "$OUT" | tee "$OUT/table.md"
