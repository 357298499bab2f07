#!/usr/bin/env bash
# The device check (issue 22), one script for one GPU machine (about 8 minutes on an
# H100/H200), known to work on lavapipe in its small form first:
#
#   scripts/prepare-device.sh            # here: builds .device/ (binaries, data) and .gl/
#   scripts/gpu-check.sh --small         # here, on lavapipe: the same steps, small sizes
#   scripts/gpu-check.sh                 # on the GPU machine, carry [".device", ".gl"]
#
# Steps: the adapter (`spikeconv devices`); the GPU correctness tests (prebuilt, stripped
# test binaries: kernels and whole SNN plans against the CPU reference, exactly on dyadic
# networks; the library jobs on the CPU and the GPU backend); the ANN accuracy of each checkpoint against its reference count; `spikeconv
# bench --profile` (image-timesteps/s, GMAC/s, dispatches per chunk, GPU time per kernel
# from timestamp queries) of ResNet-20 and ResNet-110 at T = 32, and of ResNet-110 once
# more with the direct conv kernels instead of the tiled ones (SPIKECONV_CONV=direct); then timed full sweeps (calibration included) of ResNet-20 and ResNet-110 at
# T = 32 and T = 64 on the whole test set. Every step has a time limit (the whole run
# stays under about 9 minutes, one device command), and a step over it is reported as
# TIMEOUT with its limit, a lower bound. Everything goes to $OUT (default out/): logs,
# JSON lines, summary.txt. Exits non-zero when a test fails or an ANN count is off.
set -uo pipefail
cd "$(dirname "$0")/.."
small=false
[ "${1:-}" = "--small" ] && small=true
OUT="${OUT:-out}"
mkdir -p "$OUT"
if ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
# --backend gpu everywhere: with auto, a missing NVIDIA ICD would silently fall back to the CPU.
export WGPU_BACKEND=vulkan NODEVICE_SELECT=1
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
# The binaries travel gzipped (the 64 MiB a device call carries).
bin=/tmp/spikeconv-device
rm -rf "$bin" && mkdir -p "$bin/tests"
gunzip -c .device/spikeconv.gz > "$bin/spikeconv"
for f in .device/tests/*.gz; do gunzip -c "$f" > "$bin/tests/$(basename "$f" .gz)"; done
chmod +x "$bin/spikeconv" "$bin"/tests/*
B=$bin/spikeconv
D=.device/data
W=$D/weights
C=$D/cifar10/data_batch_1.bin # the first 2048 training images
T=$D/cifar10/test_batch.bin
if $small; then
    # 256 test images, ResNet-20's ANN count on them is 233 (the data README).
    head -c $((256 * 3073)) "$T" > "$OUT/test_256.bin"
    T="$OUT/test_256.bin"
    models="resnet20"
    sweep_steps="8 16"
    test_filter="--skip resnet110"
    bench_images=64
    bench_limit=300
    calib_images=256
    peak=""
else
    models="resnet20 resnet110"
    sweep_steps="32 64"
    test_filter=""
    bench_images=2048
    bench_limit=45
    calib_images=2048
    # H100/H200 SXM: 67 TFLOP/s fp32 dense (NVIDIA's figures); other GPUs: set PEAK_TFLOPS.
    peak="--peak-tflops ${PEAK_TFLOPS:-67}"
fi
# Seconds each sweep may take: the run must end inside one device command (10 minutes).
sweep_limit() { # model timesteps
    case "$1 $2" in
        "resnet20 32") echo 45 ;; "resnet20 64") echo 60 ;; "resnet110 32") echo 90 ;; "resnet110 64") echo 120 ;;
        *) echo 300 ;;
    esac
}
file_of() { case $1 in resnet20) echo resnet20_cifar10_akamaster.safetensors ;; resnet110) echo resnet110_cifar10_fhempcnn.safetensors ;; esac; }
expected_ann() { # model images
    case "$1 $2" in
        "resnet20 256") echo 233 ;; "resnet20 10000") echo 9173 ;; "resnet110 10000") echo 9350 ;; *) echo "" ;;
    esac
}
failed=0
table="$OUT/summary.txt"
echo "check | result | seconds" > "$table"
seconds_since() { echo "$(date +%s.%N) - $1" | bc; }

echo "== adapter" | tee "$OUT/devices.txt"
$B devices | tee -a "$OUT/devices.txt"

echo "== GPU correctness tests"
for test in "$bin"/tests/*; do
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    filter=$test_filter
    # families: only the PyTorch-logit checks (its other tests run the spikeconv binary by
    # the path it was built at).
    [ "$(basename "$test")" = families ] && filter="logits $test_filter"
    if SPIKECONV_DATA=$D timeout 60 "$test" --test-threads 1 $filter >>"$OUT/tests.log" 2>&1; then
        result="ok ($(grep -o '[0-9]* passed' "$OUT/tests.log" | tail -1))"
    else
        result=FAILED
        failed=1
    fi
    echo "tests $(basename "$test") | $result | $(seconds_since "$start")" | tee -a "$table"
done

images=$(( $(stat -c %s "$T") / 3073 ))
for model in $models; do
    start=$(date +%s.%N)
    json=$(timeout 40 $B ann --backend gpu --model "$W/$(file_of $model)" --data "$T" --json 2>>"$OUT/ann.log") || json=""
    echo "$json" >> "$OUT/ann.jsonl"
    correct=$(echo "$json" | sed -n 's/.*"correct":\([0-9]*\).*/\1/p')
    want=$(expected_ann $model "$images")
    verdict=ok
    if [ -z "$correct" ]; then
        verdict=FAILED
        failed=1
    elif [ -n "$want" ] && { [ $((correct - want)) -gt 2 ] || [ $((want - correct)) -gt 2 ]; }; then
        verdict="MISMATCH (expected $want)"
        failed=1
    fi
    echo "ann $model $images images | $correct $verdict | $(seconds_since "$start")" | tee -a "$table"
done

# The same converted ResNet-20 on the GPU and on the CPU backend (64 images, T = 32), with
# plain and with signed neurons: the
# same spikes where the driver rounds as the CPU does (ARCHITECTURE.md, "One arithmetic on
# every backend"); a driver that fuses the first conv's multiply-adds may flip a rare one.
for neuron in if signed; do
    start=$(date +%s.%N)
    agreement="FAILED"
    if timeout 60 $B convert --backend cpu --model "$W/$(file_of resnet20)" --calib "$C" --calib-images 256 \
        --threshold channel-percentile:99.9 --neuron $neuron -o "$OUT/agreement.safetensors" >>"$OUT/agreement.log" 2>&1 &&
        for backend in gpu cpu; do
            timeout 120 $B sweep --backend $backend --snn "$OUT/agreement.safetensors" --data "$T" --limit 64 \
                --timesteps 32 --json >"$OUT/agreement-$backend.jsonl" 2>>"$OUT/agreement.log" || exit 1
        done; then
        agreement=$(python3 -c 'import json, sys
g, c = (json.load(open(sys.argv[1] + "/agreement-" + b + ".jsonl")) for b in ("gpu", "cpu"))
gap = max(abs(x - y) for x, y in zip(g["correct"], c["correct"]))
same = sum(x == y for x, y in zip(g["firing_rate"], c["firing_rate"]))
print("largest per-step gap %d of 64 images; firing rate identical in %d of %d layers" % (gap, same, len(c["firing_rate"])))' "$OUT") || agreement=FAILED
    fi
    rm -f "$OUT/agreement.safetensors"
    [ "$agreement" = FAILED ] && failed=1
    echo "agreement resnet20 ($neuron neurons) gpu vs cpu | $agreement | $(seconds_since "$start")" | tee -a "$table"
done

# The GPU default is the tiled conv; the register-blocked direct kernels once more for
# ResNet-110 (ResNet-20 in the small form), the comparison that decides the default.
bench_runs="$(for m in $models; do echo "$m:"; done) ${models##* }:direct"
for run in $bench_runs; do
    model=${run%%:*}
    conv=${run#*:}
    start=$(date +%s.%N)
    if SPIKECONV_CONV=$conv timeout "$bench_limit" $B bench --backend gpu --model "$W/$(file_of $model)" \
        --calib "$C" --calib-images "$calib_images" --threshold channel-percentile:99.9 \
        --data "$T" --limit "$bench_images" --timesteps 32 --profile $peak --append "$OUT/bench.jsonl" >>"$OUT/bench.log" 2>&1; then
        result=$(tail -1 "$OUT/bench.jsonl" | python3 -c 'import json, sys
r = json.load(sys.stdin)
peak = " (%.1f %% of peak)" % (100 * r["fraction_of_peak"]) if "fraction_of_peak" in r else ""
print("%.0f img-ts/s, %.0f GMAC/s%s, %s dispatches per chunk of %s, %s layers" % (r["image_timesteps_per_second"],
      r["gmac_per_second"], peak, r["dispatches_per_chunk"], r["batch"], r["layers"]))') || failed=1
    elif [ $? -eq 124 ]; then
        result="TIMEOUT (over $bench_limit s)"
    else
        result=FAILED
        failed=1
    fi
    echo "bench $model T=32 ${conv:-default} conv | $result | $(seconds_since "$start")" | tee -a "$table"
done

for model in $models; do
    for steps in $sweep_steps; do
        start=$(date +%s.%N)
        name="sweep_${model}_T$steps"
        limit=$(sweep_limit $model $steps)
        if timeout "$limit" $B sweep --backend gpu --model "$W/$(file_of $model)" --calib "$C" \
            --calib-images "$calib_images" --threshold channel-percentile:99.9 \
            --data "$T" --timesteps "$steps" --json >"$OUT/$name.jsonl" 2>>"$OUT/sweep.log"; then
            result=$(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print("%d/%d at T (ANN %d)" % (r["correct"][-1], r["images"], r["ann_correct"]))' "$OUT/$name.jsonl") || failed=1
        elif [ $? -eq 124 ]; then
            result="TIMEOUT (over $limit s)"
        else
            result=FAILED
            failed=1
        fi
        echo "sweep $model $images images T=$steps | $result | $(seconds_since "$start")" | tee -a "$table"
    done
done

echo
column -t -s '|' "$table"
exit $failed
