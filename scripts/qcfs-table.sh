#!/usr/bin/env bash
# One quantization-aware network's row block of the full-test-set table (issue 32), run by
# the run.sh of a results/table-*-qcfs* experiment with OUT set (scripts/experiment.sh):
#
#   MODEL=checkpoint_with_lambdas.safetensors scripts/qcfs-table.sh
#
# For every T of TIMESTEPS, on the whole test set, calibrated and tuned on training images
# only (scripts/sweep-part.sh): `trained` (θ = λ, membranes from θ/2: QCFS's conversion),
# `trained+bias` (bias currents for T) and `channel-ttrbr:trained+bias` (thresholds tuned
# from λ for T, then bias currents), each with its constant-current twin. Each part is
# resumable; small T first. NEURON=signed converts to signed neurons (names end in +signed). Then scripts/ttrbr_table.py writes table.md / table.csv
# (exact paired p-values against `trained`) and the curves. The quantized ANN's count is in
# every sweep line (`quantized_ann`).
set -euo pipefail
: "${OUT:?run through scripts/experiment.sh}" "${MODEL:?checkpoint to convert}"
TIMESTEPS="${TIMESTEPS:-1 2 4 8 16 32 64}"
NEURON="${NEURON:-if}"
source scripts/sweep-part.sh

for T in $TIMESTEPS; do
    sweep_part "T$T-trained" --threshold trained,channel-ttrbr:trained --bias-correction --tune-timesteps "$T" \
        --timesteps "$T" --neuron "$NEURON" --tuning-csv "$OUT/T$T-trained.tuning.csv"
done

BASELINE=trained
[ "$NEURON" = if ] || BASELINE="trained+$NEURON"
python3 scripts/ttrbr_table.py "$OUT" --spikeconv "$SPIKECONV" --baseline "$BASELINE"
