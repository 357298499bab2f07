# What else was tried to bring the restructured ResNet-110 at T = 16 within 1 point of its
# ANN (issue 23), on all 10 000 test images, each against the table's best
# (`channel-ttrbr+bias`, results/table-resnet110-restructured, part T16-bias) on the same
# images: the refit of each layer's thresholds under its bias current
# (--refit-thresholds), six correction rounds instead of three (--bias-rounds 6), and
# each layer's initial membrane potential tuned with its thresholds (--tune-v-init).
# Calibration and tuning as in the table (scripts/ttrbr-table.sh): the first 2048 images
# of data_batch_1, tuning and bias correction on the first 512 of them. Each part is
# written to a temporary name and renamed when complete;
#   scripts/experiment.sh --resume results/ttrbr-variants-resnet110-restructured-T16
# keeps the finished ones. paired.txt: every pair's exact McNemar p-value.
# input: ../runs/resnet110_restructured_50k.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
set -euo pipefail
D=../shared/data
MODEL=../runs/resnet110_restructured_50k.safetensors
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
    nice -n "${NICE:-0}" "$SPIKECONV" sweep --backend cpu --model "$MODEL" \
        --calib "$D/cifar10/data_batch_1.bin" --calib-images 2048 --tune-images 512 \
        --data "$D/cifar10/test_batch.bin" --threshold channel-ttrbr --bias-correction \
        --tune-timesteps 16 --timesteps 16 --json --predictions "$OUT/$name.predictions.csv.tmp" \
        --tuning-csv "$OUT/$name.tuning.csv" "$@" >"$OUT/$name.jsonl.tmp"
    mv "$OUT/$name.predictions.csv.tmp" "$OUT/$name.predictions.csv"
    mv "$OUT/$name.jsonl.tmp" "$OUT/$name.jsonl"
    echo "$name: $(($(date +%s) - t0)) s" >&2
}
part refit --refit-thresholds
part rounds6 --bias-rounds 6
part v_init --tune-v-init
"$SPIKECONV" paired results/table-resnet110-restructured/out/T16-bias.predictions.csv \
    "$OUT/refit.predictions.csv" "$OUT/rounds6.predictions.csv" "$OUT/v_init.predictions.csv" | tee "$OUT/paired.txt"
