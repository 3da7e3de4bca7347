#!/usr/bin/env bash
# How docs/results/lunar-more-* was made: the two methods the first study left out
# (neuromod_island, hybrid_cma_ff) beside cma_es as the reference, at the first study's
# settings, run through GAIA itself the same way (run.sh): a server, one worker, seed by seed.
#
#   docs/results/run-more.sh          # from the repository root; needs a release `gaia` on PATH
#   docs/results/run-more.sh export   # once `gaia study lunar-more` says done
#
# DIR (./lunar-more-run) holds the server's data and the logs; MAX_EVALS (3000) is each run's budget.
set -euo pipefail
DIR=$(mkdir -p "${DIR:-./lunar-more-run}" && cd "${DIR:-./lunar-more-run}" && pwd)
export GAIA_SERVER=http://127.0.0.1:7601 GAIA_DATA_DIR="$DIR/data"
if [ "${1:-run}" = export ]; then
  out=docs/results
  gaia study lunar-more > "$out/lunar-more-study.txt"
  gaia compare lunar-more --target solved > "$out/lunar-more-compare.txt"
  gaia compare lunar-more --target solved --json > "$out/lunar-more-compare-solved.json"
  gaia export --study lunar-more --json --figure scores -o "$out/lunar-more-scores.json"
  for f in aggregate ecdf; do
    gaia export --study lunar-more --png --figure "$f" -o "$out/lunar-more-$f.png"
  done
  exit 0
fi
nohup gaia serve --port 7601 --data-dir "$DIR/data" > "$DIR/serve.log" 2>&1 &
sleep 2
nohup gaia work --token-file "$DIR/data/admin.token" --experiments-dir experiments \
  --state-dir "$DIR/worker" --slots 1 --name repro2 > "$DIR/work.log" 2>&1 &
for seed in 1 2 3 4 5 6 7 8 9 10; do
  gaia submit --study lunar-more --env LunarLander-v3 --seeds "$seed" --max-evals "${MAX_EVALS:-3000}" \
    --method cma_es,neuromod_island,hybrid_cma_ff >/dev/null
done
gaia study lunar-more | head -8
