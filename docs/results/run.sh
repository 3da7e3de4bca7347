#!/usr/bin/env bash
# How docs/results/ was made: the LunarLander study run through GAIA itself on one 2-core
# machine — a server, one worker (each job uses both cores through the experiments' process
# pool), the study submitted seed by seed so that every method has runs early — then exported.
#
#   docs/results/run.sh              # from the repository root; needs a release `gaia` on PATH
#   docs/results/run.sh export       # once `gaia study lunar` says done: the files of docs/results/
#
# DIR (./lunar-run) holds the server's data and the logs; MAX_EVALS (3000) is each run's budget.
set -euo pipefail
DIR=$(mkdir -p "${DIR:-./lunar-run}" && cd "${DIR:-./lunar-run}" && pwd)
export GAIA_SERVER=http://127.0.0.1:7600 GAIA_DATA_DIR="$DIR/data"
if [ "${1:-run}" = export ]; then
  out=docs/results
  gaia study lunar > "$out/lunar-study.txt"
  gaia compare lunar --target solved > "$out/lunar-compare.txt"
  gaia compare lunar --json > "$out/lunar-compare.json"
  gaia compare lunar --target solved --json > "$out/lunar-compare-solved.json"
  gaia export --study lunar --json --figure scores -o "$out/lunar-scores.json"
  for f in aggregate profile improvement curves ecdf; do
    gaia export --study lunar --png --figure "$f" -o "$out/lunar-$f.png"
  done
  exit 0
fi
nohup gaia serve --port 7600 --data-dir "$DIR/data" > "$DIR/serve.log" 2>&1 &
sleep 2
nohup gaia work --token-file "$DIR/data/admin.token" --experiments-dir experiments \
  --state-dir "$DIR/worker" --slots 1 --name repro > "$DIR/work.log" 2>&1 &
for seed in 1 2 3 4 5 6 7 8 9 10; do
  gaia submit --study lunar --env LunarLander-v3 --seeds "$seed" --max-evals "${MAX_EVALS:-3000}" \
    --method cma_es,curriculum_cma_es,neuromod_cma_es,openai_es,island_model,indirect_encoding >/dev/null
done
gaia study lunar | head -8
