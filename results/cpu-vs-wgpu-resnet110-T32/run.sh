# The CPU backend against the wgpu kernels (lavapipe here) on the real ResNet-110: one
# converted network (channel-percentile:99.9, converted on the CPU), the first 128 test
# images simulated to T = 32 on each backend; the correct counts per step should agree
# within 1 % of the images (summation order may flip a rare spike). Run with:
# scripts/experiment.sh results/cpu-vs-wgpu-resnet110-T32
# input: ../shared/data/weights/resnet110_cifar10_fhempcnn.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
set -euo pipefail
B="$SPIKECONV"
D=../shared/data
export WGPU_BACKEND=vulkan NODEVICE_SELECT=1
$B convert --backend cpu --model $D/weights/resnet110_cifar10_fhempcnn.safetensors --calib $D/cifar10/data_batch_1.bin \
    --threshold channel-percentile:99.9 -o "$OUT/resnet110.safetensors" > /dev/null
for backend in cpu gpu; do
    $B sweep --backend $backend --snn "$OUT/resnet110.safetensors" --data $D/cifar10/test_batch.bin --limit 128 \
        --timesteps 32 --json --predictions "$OUT/predictions_$backend.csv" > "$OUT/sweep_$backend.jsonl"
done
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
cpu, gpu = (json.loads(open(f"{out}/sweep_{b}.jsonl").readline()) for b in ("cpu", "gpu"))
gaps = [abs(c - g) for c, g in zip(cpu["correct"], gpu["correct"])]
same = sum(a == b for a, b in zip(open(f"{out}/predictions_cpu.csv").read().splitlines()[1:],
                                   open(f"{out}/predictions_gpu.csv").read().splitlines()[1:]))
report = {"images": cpu["images"], "largest_gap_in_correct": max(gaps), "gap_per_step": gaps,
          "limit_1_percent": cpu["images"] / 100, "same_prediction_after_T": same,
          "cpu_correct_at_T": cpu["correct"][-1], "gpu_correct_at_T": gpu["correct"][-1]}
json.dump(report, open(f"{out}/agreement.json", "w"), indent=1)
print(json.dumps(report))
PY
