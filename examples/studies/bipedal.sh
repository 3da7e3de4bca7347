#!/usr/bin/env bash
# The BipedalWalker-v3 runs of the original GAIA project (CMA-ES, OpenAI-ES), as one GAIA study
# with intervals over seeds. Solved at >= 300. (The original's CMA-ES stopped after 500
# generations without improvement; GAIA's cma_es restarts from its best point when pycma's own
# criteria fire and runs to the budget or to a validated solve.)
# BipedalWalker is ~25x slower per eval than LunarLander (up to 1,600 steps an episode, lidar):
# budget about 4 CPU-hours per 10,000 evals on a 2 GHz core. CMA-ES keeps the full covariance
# of the network's 11,716 parameters: about 3.3 GB of memory per job (give each worker slot
# ~3.5 GB), and ~2 s of a core per generation for its own update (experiments/README.md).
#
#   examples/studies/bipedal.sh && gaia compare bipedal --target solved
#
# Settings (environment): STUDY (bipedal), SEEDS (1..10), MAX_EVALS (100000), ENVS
# (BipedalWalker-v3; add BipedalWalkerHardcore-v3 for the hard variant).
set -euo pipefail
STUDY=${STUDY:-bipedal}
SEEDS=${SEEDS:-1..10}
MAX_EVALS=${MAX_EVALS:-100000}
ENVS=${ENVS:-BipedalWalker-v3}
GAIA=${GAIA:-gaia}
common=(--study "$STUDY" --env "$ENVS" --seeds "$SEEDS" --max-evals "$MAX_EVALS")

# The original's network for BipedalWalker: 24 -> 128 -> 64 -> 4 (11,716 parameters with every
# layer's biases; the original's summary gives 11,588).
"$GAIA" submit "${common[@]}" --method cma_es,openai_es --param 'hidden=[128,64]'
"$GAIA" study "$STUDY"
