#!/usr/bin/env bash
# The device check: run on a GPU machine from the repository root after
# scripts/prepare-device.sh, with .device and .gl carried. Prints the adapter, checks the
# ANN accuracies against the reference counts, runs the full-size evaluations and SNN sweeps,
# and ends with a short table. Logs and JSON go to $OUT (or out/ when unset).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out}"
mkdir -p "$OUT"
if ! ldconfig -p | grep libvulkan.so.1 >/dev/null; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
# --backend gpu below: with auto, a missing NVIDIA ICD would silently fall back to the CPU backend.
export WGPU_BACKEND=vulkan NODEVICE_SELECT=1
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
B=.device/spikeconv
D=.device/data
W=$D/weights
T=$D/cifar10/test_batch.bin
C=$D/cifar10/calib_2048.bin
$B devices | tee "$OUT/devices.txt"
table="$OUT/summary.txt"
echo "check | result | seconds" > "$table"
ann() { # name file expected_10000
    local json
    json=$($B ann --backend gpu --model "$W/$2" --data "$T" --json 2>>"$OUT/ann.log") || { echo "$1 ann | FAILED |" >> "$table"; return; }
    echo "$json" >> "$OUT/ann.jsonl"
    local correct seconds
    correct=$(echo "$json" | sed 's/.*"correct":\([0-9]*\).*/\1/')
    seconds=$(echo "$json" | sed 's/.*"seconds":\([0-9.]*\).*/\1/')
    local verdict=ok; [ $(( correct - $3 )) -le 2 ] && [ $(( $3 - correct )) -le 2 ] || verdict="MISMATCH (expected $3)"
    echo "$1 ann 10000 | $correct $verdict | $seconds" >> "$table"
}
ann resnet20 resnet20_cifar10_akamaster.safetensors 9173
ann resnet56 resnet56_cifar10_akamaster.safetensors 9339
ann resnet110 resnet110_cifar10_fhempcnn.safetensors 9350
sweep() { # name file limit timesteps
    local start end
    start=$(date +%s.%N)
    $B sweep --backend gpu --model "$W/$2" --calib "$C" --threshold max,percentile:99.9,percentile:99.99 \
        --data "$T" --limit "$3" --timesteps "$4" --json --csv "$OUT/$1_$3_T$4.csv" --plot "$OUT/$1_$3_T$4.svg" \
        > "$OUT/$1_$3_T$4.jsonl" 2>>"$OUT/sweep.log" || { echo "$1 sweep | FAILED |" >> "$table"; return; }
    end=$(date +%s.%N)
    echo "$1 sweep $3 images T=$4 | $(tail -n +2 "$OUT/$1_$3_T$4.csv" | tail -1) | $(echo "$end - $start" | bc)" >> "$table"
}
sweep resnet20 resnet20_cifar10_akamaster.safetensors 1000 128
sweep resnet110 resnet110_cifar10_fhempcnn.safetensors 256 256
tuned() { # name model-path limit timesteps: TTRBR threshold tuning for T, next to the percentile start
    local start end name="$1_ttrbr_$3_T$4"
    start=$(date +%s.%N)
    $B sweep --backend gpu --model "$2" --calib "$C" --threshold percentile:99.9,channel-percentile:99.9,ttrbr,channel-ttrbr \
        --tune-images 256 --data "$T" --limit "$3" --timesteps "$4" --json --csv "$OUT/$name.csv" \
        > "$OUT/$name.jsonl" 2>>"$OUT/sweep.log" || { echo "$1 ttrbr | FAILED |" >> "$table"; return; }
    end=$(date +%s.%N)
    echo "$1 ttrbr $3 images T=$4 | $(tail -n +2 "$OUT/$name.csv" | tail -1) | $(echo "$end - $start" | bc)" >> "$table"
}
for steps in 8 16 32; do
    tuned resnet110 "$W/resnet110_cifar10_fhempcnn.safetensors" 256 "$steps"
done
for steps in 8 16 32; do
    tuned resnet20 "$W/resnet20_cifar10_akamaster.safetensors" 1000 "$steps"
    tuned resnet20_restructured assets/resnet20_restructured.safetensors 1000 "$steps"
    tuned resnet20_preact assets/resnet20_preact.safetensors 1000 "$steps"
done
column -t -s '|' "$table"
