#!/usr/bin/env bash
# A long Schemathesis run against a release `gaia serve`: every operation of docs/openapi.json,
# EXAMPLES generated cases each (default 100) in every phase (examples, coverage, fuzzing,
# stateful chains), the same checks as python/tests/test_schemathesis.py. Prints Schemathesis's
# summary (operations, cases generated, failures, time) and the server's CPU time and RSS.
#
#   benches/schemathesis.sh            (needs python/.venv: .ci/install or scripts/test)
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES="${EXAMPLES:-100}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p gaia-cli --locked -q
dir="$(mktemp -d)"
token="schemathesis-bench-token-0123"
GAIA_TOKEN="$token" "$target/release/gaia" serve --bind 127.0.0.1 --port 0 --data-dir "$dir/data" \
  > "$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  url="$(grep -o 'http://127.0.0.1:[0-9]*' "$dir/serve.log" | head -1 || true)"
  [ -n "$url" ] && break
  sleep 0.1
done
start=$(date +%s.%N)
SCHEMATHESIS_HOOKS=st_hooks PYTHONPATH=python/tests python/.venv/bin/schemathesis run docs/openapi.json \
  --url "$url" -H "Authorization: Bearer $token" \
  --checks all --exclude-checks positive_data_acceptance \
  --phases examples,coverage,fuzzing,stateful --max-examples "$EXAMPLES" \
  --request-timeout 30 --suppress-health-check all --no-color \
  | sed -n '/^=* SUMMARY/,$p'
end=$(date +%s.%N)
cpu=$(awk '{print ($14 + $15) / 100}' "/proc/$pid/stat")
rss=$(awk '/VmRSS/ {print $2 / 1024}' "/proc/$pid/status")
printf 'wall %.0f s; server CPU %.1f s, RSS %.1f MiB after the run; load %s\n' \
  "$(echo "$end - $start" | bc)" "$cpu" "$rss" "$(cut -d' ' -f1-3 /proc/loadavg)"
kill -0 $pid && echo "the server is still up"
