# Accuracy and estimated energy per image on the full CIFAR-10 test set (issue 35, item 4):
# the standard ResNet-20 (akamaster, BSD) and its restructured form (assets/), converted with
# channel-percentile:99.9 and channel-percentile:99.9 with bias correction, each swept to
# T = 4, 8, 16 and 32 (energy is measured from the spikes of all T steps: one sweep per T).
# Prices: 4.6 pJ per MAC, 0.9 pJ per accumulate (docs/METHOD.md, "Energy").
# Run with: scripts/experiment.sh results/energy-resnet20   (resumable: --resume)
# input: ../shared/data/weights/resnet20_cifar10_akamaster.safetensors
# input: assets/resnet20_restructured.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
# setting: TIMESTEPS
set -euo pipefail
D=../shared/data
for model in standard restructured; do
    case $model in
        standard) file=$D/weights/resnet20_cifar10_akamaster.safetensors ;;
        restructured) file=assets/resnet20_restructured.safetensors ;;
    esac
    for T in ${TIMESTEPS:-4 8 16 32}; do
        out="$OUT/$model-T$T.jsonl"
        [ -s "$out" ] && continue
        "$SPIKECONV" sweep --backend cpu --model "$file" --calib $D/cifar10/data_batch_1.bin \
            --threshold channel-percentile:99.9 --bias-correction --tune-timesteps "$T" \
            --data $D/cifar10/test_batch.bin --timesteps "$T" --json > "$out.part"
        mv "$out.part" "$out"
    done
done
python3 scripts/energy_table.py "$OUT"/*.jsonl > "$OUT/table.md"
cat "$OUT/table.md"
