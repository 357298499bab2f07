# The two max-pool strategies against the ANN on the full CIFAR-10 test set (issue 35, item 2),
# on a VGG-11 narrowed to a quarter of the width (16-M-32-M-64-64-M-128-128-M-128-128-M, one
# linear layer, BatchNorm), trained here with max pools (assets/vgg11w4_max.safetensors) and
# that network fine-tuned for 2 epochs with average pools (assets/vgg11w4_avg.safetensors).
# Conversions: the max-pool network with --maxpool gated (Rueckauer et al. 2017's gate) and
# with --maxpool avg (each max pool replaced by the average pool of its window); the
# average-pool network as it is. Methods: channel-percentile:99.9, and channel-ttrbr with
# bias correction tuned for T = 8 and 32; every network swept to T = 64 (the table
# reads t = 4 ... 64 from the per-step counts).
# Run with: scripts/experiment.sh results/maxpool-vgg11-narrow   (resumable: --resume)
# input: assets/vgg11w4_max.safetensors
# input: assets/vgg11w4_avg.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
set -euo pipefail
D=../shared/data
for run in max-gated max-avg avg; do
    case $run in
        max-gated) file=assets/vgg11w4_max.safetensors; strategy=gated ;;
        max-avg) file=assets/vgg11w4_max.safetensors; strategy=avg ;;
        avg) file=assets/vgg11w4_avg.safetensors; strategy=gated ;;
    esac
    out="$OUT/$run.jsonl"
    [ -s "$out" ] && continue
    "$SPIKECONV" sweep --backend cpu --model "$file" --calib $D/cifar10/data_batch_1.bin --maxpool "$strategy" \
        --threshold channel-percentile:99.9,channel-ttrbr --bias-correction --tune-timesteps 8,32 \
        --data $D/cifar10/test_batch.bin --timesteps 64 --json > "$out.part" 2> "$OUT/$run.stderr.txt"
    mv "$out.part" "$out"
done
python3 scripts/maxpool_table.py "$OUT"/max-gated.jsonl "$OUT"/max-avg.jsonl "$OUT"/avg.jsonl > "$OUT/table.md"
cat "$OUT/table.md"
