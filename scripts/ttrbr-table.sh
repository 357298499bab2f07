#!/usr/bin/env bash
# One network's row block of the full-test-set TTRBR table (issue 23), run by the
# run.sh of a results/table-* experiment with OUT set (scripts/experiment.sh):
#
#   MODEL=checkpoint.safetensors scripts/ttrbr-table.sh
#
# For every T of TIMESTEPS (each network tuned for the T it is read at), on the whole test
# set, calibrated and tuned on training images only (the first CALIB_IMAGES of
# data_batch_1, tuning on the first TUNE_IMAGES of those):
#   T<T>-tuned:  ttrbr and channel-ttrbr;
#   T<T>-bias:   the best baseline, channel-percentile:99.9, without and with bias
#                correction, and channel-ttrbr with bias correction.
# PARTS (default "bias tuned") picks parts; NEURON=signed converts to signed neurons (every
# name then ends in +signed). Each part is resumable (scripts/sweep-part.sh: CALIB_IMAGES,
# TUNE_IMAGES, BACKEND, LIMIT and NICE are read there). Small T first, so an unfinished run still gives whole columns
# of the table. Then scripts/ttrbr_table.py writes table.md / table.csv (paired p-values
# against the baseline) and curves.svg.
set -euo pipefail
: "${OUT:?run through scripts/experiment.sh}" "${MODEL:?checkpoint to convert}"
TIMESTEPS="${TIMESTEPS:-4 8 16 32 64}"
PARTS="${PARTS:-bias tuned}"
NEURON="${NEURON:-if}"
BASELINE=channel-percentile:99.9
source scripts/sweep-part.sh

for T in $TIMESTEPS; do
    case " $PARTS " in *" bias "*)
        sweep_part "T$T-bias" --threshold "$BASELINE,channel-ttrbr" --bias-correction --tune-timesteps "$T" \
            --timesteps "$T" --neuron "$NEURON" --tuning-csv "$OUT/T$T-bias.tuning.csv" ;;
    esac
    case " $PARTS " in *" tuned "*)
        sweep_part "T$T-tuned" --threshold ttrbr,channel-ttrbr --tune-timesteps "$T" --timesteps "$T" \
            --neuron "$NEURON" --tuning-csv "$OUT/T$T-tuned.tuning.csv" ;;
    esac
done

[ "$NEURON" = if ] || BASELINE="$BASELINE+$NEURON"
python3 scripts/ttrbr_table.py "$OUT" --spikeconv "$SPIKECONV" --baseline "$BASELINE"
