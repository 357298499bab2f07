# What tuning on more images changes (issue 23): channel-ttrbr for T = 8 on the standard
# ResNet-20, tuned on the first 128, 512 and 2048 calibration images (calibration: the
# first 2048 of data_batch_1), each read on the whole test set at T = 8; paired.txt
# compares them image by image (exact McNemar). CPU backend.
# Run with: scripts/experiment.sh results/tune-images-resnet20-T8
# input: ../shared/data/weights/resnet20_cifar10_akamaster.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
set -euo pipefail
D=../shared/data
files=()
for n in 128 512 2048; do
    "$SPIKECONV" sweep --backend cpu --model $D/weights/resnet20_cifar10_akamaster.safetensors \
        --calib $D/cifar10/data_batch_1.bin --threshold channel-ttrbr --tune-timesteps 8 --tune-images $n \
        --data $D/cifar10/test_batch.bin --timesteps 8 --json --predictions "$OUT/tune$n.predictions.csv.tmp" \
        > "$OUT/tune$n.jsonl"
    # Name each column by its tuning images, so the files merge.
    sed "1s/channel-ttrbr (T=8)/channel-ttrbr tuned on $n/" "$OUT/tune$n.predictions.csv.tmp" > "$OUT/tune$n.predictions.csv"
    rm "$OUT/tune$n.predictions.csv.tmp"
    files+=("$OUT/tune$n.predictions.csv")
done
"$SPIKECONV" paired "${files[@]}" | tee "$OUT/paired.txt"
