#!/usr/bin/env bash
# How docs/results/ was made: a LunarLander study run through GAIA itself on one 2-core
# machine — a server, one worker (each job uses both cores through the experiments' process
# pool), the study submitted seed by seed so that every method has runs early — then exported.
#
#   docs/results/run.sh              # from the repository root; needs a release `gaia` on PATH
#   docs/results/run.sh export       # once `gaia study $STUDY` says done: the files of docs/results/
#
#   STUDY=lunar-more METHODS=cma_es,neuromod_island,hybrid_cma_ff PORT=7601 docs/results/run.sh
#                                    # the second study (the two methods the first left out)
#   STUDY=lunar-orig METHODS=cma_es,curriculum_cma_es PARAMS='hidden=[64,32]' MAX_EVALS=15000 \
#     PORT=7602 docs/results/run.sh  # the third: the original's network (2,788 parameters)
#   STUDY=lunar-orig-nm METHODS=neuromod_cma_es PARAMS='hidden=[64,32]' MAX_EVALS=10000 \
#     PORT=7603 NICE=19 docs/results/run.sh  # the fourth: neuromodulated CMA-ES at that network
#   STUDY=lunar-ppo METHODS=ppo MAX_EVALS=1000 SLOTS=2 PORT=7604 NICE=19 PARAMS='hidden=[64,32]
#     n_envs=16 n_steps=1024 batch_size=64 n_epochs=4 gamma=0.999 gae_lambda=0.98 ent_coef=0.01' \
#     docs/results/run.sh           # the fifth: the PPO baseline (rl-baselines3-zoo's settings)
#   STUDY=lunar-scaling METHODS=cma_es MAX_EVALS=15000 SLOTS=2 PORT=7605 NICE=19 \
#     PARAMS='hidden=[64,64]' docs/results/run.sh   # the sixth: the "scaling" network (4,996
#                                    # parameters; seeds 6..10 cancelled for time)
#   STUDY=lunar-scaling-b SEEDS='6 7 8 9 10' METHODS=cma_es MAX_EVALS=15000 SLOTS=2 PORT=7606 \
#     NICE=19 PARAMS='hidden=[64,64]' docs/results/run.sh   # its seeds 6..10, a session later
#   STUDY=lunar-islands METHODS=island_model MAX_EVALS=10000 SLOTS=2 PORT=7607 NICE=19 \
#     VARIANTS='n_islands=4 topology=ring;n_islands=6 topology=full' docs/results/run.sh
#                                    # the seventh: the island models, ring and fully connected
#   STUDY=lunar-orig-oes SEEDS='1 2 3 4 5' METHODS=openai_es PARAMS='hidden=[64,32]' \
#     MAX_EVALS=60000 SLOTS=2 PORT=7609 NICE=19 docs/results/run.sh   # the ninth: OpenAI-ES at
#                                    # the original's network (seeds 6..10 submitted beside it)
#   STUDY=lunar-orig-islands METHODS=island_model PARAMS='hidden=[64,32] n_islands=4 \
#     topology=ring' MAX_EVALS=30000 SLOTS=2 PORT=7610 NICE=19 docs/results/run.sh
#                                    # the tenth: four islands on a ring at that network (seeds
#                                    # 8..10: `gaia study retry lunar-orig-islands --cancelled`)
#   STUDY=lunar-orig-full METHODS=island_model PARAMS='hidden=[64,32] n_islands=6 \
#     topology=full' MAX_EVALS=30000 SLOTS=2 PORT=7612 NICE=19 docs/results/run.sh
#                                    # the eleventh: six fully connected islands at that network
#   STUDY=lunar-orig-hybrid METHODS=hybrid_cma_ff PARAMS='hidden=[64,32]' MAX_EVALS=15000 \
#     SLOTS=2 PORT=7613 NICE=19 docs/results/run.sh   # the twelfth: the hybrid at that network
#
# STUDY (lunar) names the study and the exported files; METHODS (the first study's six);
# DIR (./$STUDY-run) holds the server's data and the logs; PORT (7600); MAX_EVALS (3000) is
# each run's budget; PARAMS, if set, is one or more `--param`s for every job, separated by spaces
# (e.g. 'hidden=[64,32]'); SLOTS (1) is the worker's slots (each evolution strategy's job uses
# both cores through its process pool; a ppo job uses one); NICE (10) is the worker's niceness,
# which its experiments (the CPU-heavy part) inherit; SEEDS ('1 2 … 10') are the seeds, in the
# order they are submitted; VARIANTS, if set, is param sets separated by `;`
# (e.g. 'n_islands=4 topology=ring;n_islands=6 topology=full'): each seed gets one job per set,
# each a method of its own in `gaia compare` (its label names the params that differ).
set -euo pipefail
STUDY=${STUDY:-lunar}
METHODS=${METHODS:-cma_es,curriculum_cma_es,neuromod_cma_es,openai_es,island_model,indirect_encoding}
DIR=$(mkdir -p "${DIR:-./$STUDY-run}" && cd "${DIR:-./$STUDY-run}" && pwd)
export GAIA_SERVER=http://127.0.0.1:${PORT:-7600} GAIA_DATA_DIR="$DIR/data"
if [ "${1:-run}" = export ]; then
  out=docs/results
  gaia study "$STUDY" > "$out/$STUDY-study.txt"
  gaia compare "$STUDY" --target solved > "$out/$STUDY-compare.txt"
  gaia compare "$STUDY" --json > "$out/$STUDY-compare.json"
  gaia compare "$STUDY" --target solved --json > "$out/$STUDY-compare-solved.json"
  gaia export --study "$STUDY" --json --figure scores -o "$out/$STUDY-scores.json"
  for f in aggregate profile improvement curves ecdf; do
    gaia export --study "$STUDY" --png --figure "$f" -o "$out/$STUDY-$f.png"
  done
  # Each run's own verdict (the experiment's final record): "reached" above counts a run whose
  # training best touched the threshold; "solved" here also needs the validation and final test.
  gaia jobs --study "$STUDY" --limit 100000 --json | python3 -c '
import json, sys
print("job\tmethod\tparams\tseed\tsolved\tevals\tbest_ever\tfinal_mean\tverdict")
for j in sorted(json.load(sys.stdin)["jobs"], key=lambda j: j["id"]):
    s, r = j["spec"], j.get("result") or {}
    print("\t".join(str(v) for v in (j["id"], s.get("method"), json.dumps(s.get("params") or {}),
          s.get("seed"), r.get("solved"), r.get("evals"), round(r.get("best_ever", float("nan")), 1),
          round(r.get("mean", float("nan")), 1), r.get("verdict"))))
' > "$out/$STUDY-verdicts.tsv"
  exit 0
fi
nohup gaia serve --port "${PORT:-7600}" --data-dir "$DIR/data" > "$DIR/serve.log" 2>&1 &
sleep 2
nohup nice -n "${NICE:-10}" gaia work --token-file "$DIR/data/admin.token" --experiments-dir experiments \
  --state-dir "$DIR/worker" --slots "${SLOTS:-1}" --name "repro-$STUDY" > "$DIR/work.log" 2>&1 &
# One `--param` list per variant: PARAMS for every job, then each of VARIANTS' sets in turn.
IFS=';' read -ra variants <<< "${VARIANTS:-}"
[ "${#variants[@]}" -gt 0 ] || variants=("")
for seed in ${SEEDS:-1 2 3 4 5 6 7 8 9 10}; do
  for variant in "${variants[@]}"; do
    [ "${#variants[@]}" -eq 1 ] || [ -n "${variant// }" ] || continue   # 'a;;b': no empty set
    params=()
    read -ra ps <<< "${PARAMS:-} $variant"
    for p in "${ps[@]}"; do params+=(--param "$p"); done
    gaia submit --study "$STUDY" --env LunarLander-v3 --seeds "$seed" --max-evals "${MAX_EVALS:-3000}" \
      --method "$METHODS" "${params[@]}" >/dev/null
  done
done
gaia study "$STUDY" | head -8
