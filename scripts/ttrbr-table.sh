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
# Each part writes <part>.jsonl (sweep --json) and <part>.predictions.csv, first to a
# temporary name and renamed when complete, and is skipped when its outputs exist: a run
# cut short resumes with `scripts/experiment.sh --resume results/NAME`. Small T first, so
# an unfinished run still gives whole columns of the table. Then scripts/ttrbr_table.py
# writes table.md / table.csv (paired p-values against the baseline) and curves.svg.
set -euo pipefail
: "${OUT:?run through scripts/experiment.sh}" "${MODEL:?checkpoint to convert}"
D=../shared/data
TIMESTEPS="${TIMESTEPS:-4 8 16 32 64}"
CALIB_IMAGES="${CALIB_IMAGES:-2048}"
TUNE_IMAGES="${TUNE_IMAGES:-512}"
BACKEND="${BACKEND:-cpu}"
LIMIT="${LIMIT:-}"
BASELINE=channel-percentile:99.9
bin="${SPIKECONV:?run through scripts/experiment.sh}"

part() {
    local name="$1"
    shift
    if [ -s "$OUT/$name.jsonl" ] && [ -s "$OUT/$name.predictions.csv" ]; then
        echo "$name: done earlier, kept" >&2
        return
    fi
    echo "$name: $*" >&2
    local t0
    t0=$(date +%s)
    nice -n "${NICE:-0}" "$bin" sweep --backend "$BACKEND" --model "$MODEL" \
        --calib "$D/cifar10/data_batch_1.bin" --calib-images "$CALIB_IMAGES" --tune-images "$TUNE_IMAGES" \
        --data "$D/cifar10/test_batch.bin" ${LIMIT:+--limit "$LIMIT"} \
        --json --predictions "$OUT/$name.predictions.csv.tmp" "$@" >"$OUT/$name.jsonl.tmp"
    mv "$OUT/$name.predictions.csv.tmp" "$OUT/$name.predictions.csv"
    mv "$OUT/$name.jsonl.tmp" "$OUT/$name.jsonl"
    echo "$name: $(($(date +%s) - t0)) s" >&2
}

for T in $TIMESTEPS; do
    part "T$T-bias" --threshold "$BASELINE,channel-ttrbr" --bias-correction --tune-timesteps "$T" --timesteps "$T" \
        --tuning-csv "$OUT/T$T-bias.tuning.csv"
    part "T$T-tuned" --threshold ttrbr,channel-ttrbr --tune-timesteps "$T" --timesteps "$T" \
        --tuning-csv "$OUT/T$T-tuned.tuning.csv"
done

python3 scripts/ttrbr_table.py "$OUT" --spikeconv "$bin" --baseline "$BASELINE"
