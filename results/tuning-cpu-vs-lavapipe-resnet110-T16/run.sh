# channel-ttrbr tuning of ResNet-110 for T = 16 on the CPU backend against the wgpu kernels
# on lavapipe (what tuning ran on before the CPU backend), same settings, back to back:
# wall time of each `convert` (calibration on 256 images, then tuning on the first 16), then
# both tuned networks on the first 1000 test images at T = 16 and `paired` on their
# predictions (are they the same network within noise?); finally the CPU tuning at full size
# (calibration 2048, 128 tuning images), timed. Run with:
# scripts/experiment.sh results/tuning-cpu-vs-lavapipe-resnet110-T16
# input: ../shared/data/weights/resnet110_cifar10_fhempcnn.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
set -euo pipefail
B="$SPIKECONV"
D=../shared/data
M=$D/weights/resnet110_cifar10_fhempcnn.safetensors
tune=(--model "$M" --calib "$D/cifar10/data_batch_1.bin" --threshold channel-ttrbr --tune-timesteps 16)
export WGPU_BACKEND=vulkan NODEVICE_SELECT=1
for backend in gpu cpu; do
    start=$(date +%s.%N)
    $B convert --backend "$backend" "${tune[@]}" --calib-images 256 --tune-images 16 \
        --tuning-csv "$OUT/tuning_16_$backend.csv" -o "$OUT/tuned_16_$backend.safetensors" > "$OUT/convert_16_$backend.txt"
    echo "{\"step\": \"convert, 16 tuning images\", \"backend\": \"$backend\", \"seconds\": $(echo "$(date +%s.%N) - $start" | bc)}" >> "$OUT/timing.jsonl"
done
for backend in gpu cpu; do
    $B sweep --backend cpu --snn "$OUT/tuned_16_$backend.safetensors" --data "$D/cifar10/test_batch.bin" --limit 1000 \
        --timesteps 16 --json --predictions "$OUT/predictions_$backend.csv" > "$OUT/sweep_$backend.jsonl"
done
# One predictions file with both networks (columns renamed by where they were tuned).
python3 - "$OUT" <<'PY'
import csv, sys
out = sys.argv[1]
tables = {b: list(csv.reader(open(f"{out}/predictions_{b}.csv"))) for b in ("gpu", "cpu")}
rows = [tables["gpu"][0][:3] + ["channel-ttrbr tuned on lavapipe t=16", "channel-ttrbr tuned on the CPU backend t=16"]]
for g, c in zip(tables["gpu"][1:], tables["cpu"][1:]):
    assert g[:3] == c[:3]
    rows.append(g[:3] + [g[3], c[3]])
csv.writer(open(f"{out}/predictions_both.csv", "w", newline=""), lineterminator="\n").writerows(rows)
PY
$B paired "$OUT/predictions_both.csv" > "$OUT/paired.txt"
start=$(date +%s.%N)
$B convert --backend cpu "${tune[@]}" --tune-images 128 --tuning-csv "$OUT/tuning_128_cpu.csv" \
    -o "$OUT/tuned_128_cpu.safetensors" > "$OUT/convert_128_cpu.txt"
echo "{\"step\": \"convert, calibration 2048, 128 tuning images\", \"backend\": \"cpu\", \"seconds\": $(echo "$(date +%s.%N) - $start" | bc)}" >> "$OUT/timing.jsonl"
