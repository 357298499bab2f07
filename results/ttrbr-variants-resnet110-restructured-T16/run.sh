# What else was tried to bring the restructured ResNet-110 at T = 16 within 1 point of its
# ANN (issue 23), on all 10 000 test images, each against the table's best
# (`channel-ttrbr+bias`, results/table-resnet110-restructured, part T16-bias) on the same
# images: the refit of each layer's thresholds under its bias current
# (--refit-thresholds), six correction rounds instead of three (--bias-rounds 6), and
# each layer's initial membrane potential tuned with its thresholds (--tune-v-init).
# Calibration and tuning as in the table (scripts/ttrbr-table.sh): the first 2048 images
# of data_batch_1, tuning and bias correction on the first 512 of them. Each part is
# resumable (scripts/sweep-part.sh):
#   scripts/experiment.sh --resume results/ttrbr-variants-resnet110-restructured-T16
# keeps the finished ones. paired.txt: every pair's exact McNemar p-value.
# input: ../runs/resnet110_restructured_50k.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
set -euo pipefail
export MODEL=../runs/resnet110_restructured_50k.safetensors
source scripts/sweep-part.sh
part() {
    local name="$1"
    shift
    sweep_part "$name" --threshold channel-ttrbr --bias-correction --tune-timesteps 16 --timesteps 16 \
        --tuning-csv "$OUT/$name.tuning.csv" "$@"
}
part refit --refit-thresholds
part rounds6 --bias-rounds 6
part v_init --tune-v-init
"$SPIKECONV" paired results/table-resnet110-restructured/out/T16-bias.predictions.csv \
    "$OUT/refit.predictions.csv" "$OUT/rounds6.predictions.csv" "$OUT/v_init.predictions.csv" | tee "$OUT/paired.txt"
