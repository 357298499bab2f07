# The whole CIFAR-10 test set (10 000 images) through the converted resnet20 on the CPU
# backend to T = 32, with one baseline threshold method (channel-percentile:99.9),
# calibration on the first 2048 images of data_batch_1 included: the full-size sweep of
# issue 21. Run with: scripts/experiment.sh results/cpu-full-sweep-resnet20-T32
# input: ../shared/data/weights/resnet20_cifar10_akamaster.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
set -euo pipefail
D=../shared/data
"$SPIKECONV" sweep --backend cpu \
    --model $D/weights/resnet20_cifar10_akamaster.safetensors \
    --calib $D/cifar10/data_batch_1.bin --threshold channel-percentile:99.9 \
    --data $D/cifar10/test_batch.bin --timesteps 32 \
    --json --csv "$OUT/accuracy.csv" --plot "$OUT/accuracy.svg" --predictions "$OUT/predictions.csv" \
    > "$OUT/sweep.jsonl"
