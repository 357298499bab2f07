# One resumable part of a results/ experiment: `sweep_part NAME [sweep options]` runs
# `spikeconv sweep` on the whole test set with the experiment's network and writes
# $OUT/NAME.jsonl (sweep --json, with each network's constant-current twin:
# --constant-currents) and $OUT/NAME.predictions.csv, first under temporary
# names, renamed when complete. A part whose outputs exist is skipped, so a run cut short
# resumes with `scripts/experiment.sh --resume results/NAME`. Sourced by run.sh scripts
# (through scripts/experiment.sh, which sets OUT and SPIKECONV), with MODEL set and
# optionally CALIB_IMAGES [2048], TUNE_IMAGES [512], BACKEND [cpu], LIMIT (test images;
# all when empty) and NICE [0]. Calibration: the first CALIB_IMAGES of data_batch_1;
# tuning and bias correction: the first TUNE_IMAGES of those.
: "${OUT:?run through scripts/experiment.sh}" "${SPIKECONV:?run through scripts/experiment.sh}"
sweep_part() {
    local name="$1"
    shift
    : "${MODEL:?checkpoint to convert}"
    if [ -s "$OUT/$name.jsonl" ] && [ -s "$OUT/$name.predictions.csv" ]; then
        echo "$name: done earlier, kept" >&2
        return
    fi
    echo "$name: $*" >&2
    local t0 data=../shared/data/cifar10
    t0=$(date +%s)
    nice -n "${NICE:-0}" "$SPIKECONV" sweep --backend "${BACKEND:-cpu}" --model "$MODEL" \
        --calib "$data/data_batch_1.bin" --calib-images "${CALIB_IMAGES:-2048}" --tune-images "${TUNE_IMAGES:-512}" \
        --data "$data/test_batch.bin" ${LIMIT:+--limit "$LIMIT"} \
        --constant-currents --json --predictions "$OUT/$name.predictions.csv.tmp" "$@" >"$OUT/$name.jsonl.tmp"
    mv "$OUT/$name.predictions.csv.tmp" "$OUT/$name.predictions.csv"
    mv "$OUT/$name.jsonl.tmp" "$OUT/$name.jsonl"
    echo "$name: $(($(date +%s) - t0)) s" >&2
}
