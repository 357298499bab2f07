# The layer-major wgpu simulation against the CPU backend on a real network (issue 22):
# the converted ResNet-20 (channel-percentile:99.9, calibration on the first 2048
# training images), the first 256 test images, T = 32, on lavapipe (--backend gpu) and on
# the CPU backend; compare.py checks every per-step correct count within 1 and writes
# comparison.txt. Run with: scripts/experiment.sh results/gpu-vs-cpu-resnet20-256-T32
# input: ../shared/data/weights/resnet20_cifar10_akamaster.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
set -euo pipefail
cargo build --release --quiet
export WGPU_BACKEND=vulkan NODEVICE_SELECT=1
D=../shared/data
for backend in gpu cpu; do
    target/release/spikeconv sweep --backend $backend \
        --model $D/weights/resnet20_cifar10_akamaster.safetensors \
        --calib $D/cifar10/data_batch_1.bin --threshold channel-percentile:99.9 \
        --data $D/cifar10/test_batch.bin --limit 256 --timesteps 32 \
        --json --predictions "$OUT/predictions-$backend.csv" > "$OUT/sweep-$backend.jsonl"
done
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
gpu, cpu = (json.loads(open(f"{out}/sweep-{b}.jsonl").readline()) for b in ("gpu", "cpu"))
gaps = [abs(g - c) for g, c in zip(gpu["correct"], cpu["correct"])]
lines = [
    f"gpu ({gpu['adapter']}): {gpu['correct']}",
    f"cpu ({cpu['adapter']}): {cpu['correct']}",
    f"ANN: gpu {gpu['ann_correct']}, cpu {cpu['ann_correct']}",
    f"largest per-step gap: {max(gaps)} image(s) of {gpu['images']} (asked: at most 1)",
]
open(f"{out}/comparison.txt", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(0 if max(gaps) <= 1 and gpu["ann_correct"] == cpu["ann_correct"] else 1)
PY
