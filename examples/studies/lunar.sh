#!/usr/bin/env bash
# The LunarLander-v3 comparison of the original GAIA project (one run per method there), as one
# GAIA study with intervals over seeds. Run against a server with workers attached:
#
#   GAIA_SERVER=http://lab-server:7434 GAIA_TOKEN=... examples/studies/lunar.sh
#   gaia compare lunar --target solved          # evals to solve, success rate, with 95 % CIs
#   gaia export --study lunar --png --figure ecdf -o lunar-ecdf.png
#
# Settings (environment): STUDY (lunar), SEEDS (1..10), MAX_EVALS (100000, the original's
# budget), METHODS (the CMA-ES family, OpenAI-ES and the CPPN; the island models are submitted
# below), HIDDEN (the policy's hidden layers: [16], GAIA's default, 212 parameters; the
# original's ≈2,700 are HIDDEN='[64,32]' (2,788), at ~15x the CPU per CMA-ES generation),
# PPO=1 adds the gradient baseline (its worker installs stable-baselines3 and PyTorch, ~3 GB,
# on first use).
# Every job stops once its policy is validated at the env's threshold (200) and confirmed by a
# 20-episode final test, so a method that solves early frees its worker early.
set -euo pipefail
STUDY=${STUDY:-lunar}
SEEDS=${SEEDS:-1..10}
MAX_EVALS=${MAX_EVALS:-100000}
METHODS=${METHODS:-cma_es,curriculum_cma_es,neuromod_cma_es,neuromod_island,hybrid_cma_ff,openai_es,indirect_encoding}
HIDDEN=${HIDDEN:-[16]}
GAIA=${GAIA:-gaia}
common=(--study "$STUDY" --env LunarLander-v3 --seeds "$SEEDS" --max-evals "$MAX_EVALS"
  --param "hidden=$HIDDEN")

# The single-population methods, each with its defaults (experiments/README.md says them).
"$GAIA" submit "${common[@]}" --method "$METHODS"
# The island models of the original: four CMA-ES islands on a ring, six fully connected
# (migration every 10 generations).
"$GAIA" submit "${common[@]}" --method island_model --param n_islands=4 --param topology=ring
"$GAIA" submit "${common[@]}" --method island_model --param n_islands=6 --param topology=full
# The original's "scaling" run: CMA-ES on a larger network (SCALED, default [64,64]).
"$GAIA" submit --study "$STUDY" --env LunarLander-v3 --seeds "$SEEDS" --max-evals "$MAX_EVALS" \
  --method cma_es --param "hidden=${SCALED:-[64,64]}"
if [ "${PPO:-0}" = 1 ]; then
  # The gradient baseline: evals are environment episodes, so it shares the evals axis.
  "$GAIA" submit "${common[@]}" --method ppo
fi
"$GAIA" study "$STUDY"
