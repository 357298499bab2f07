#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh needs on a device machine (no Rust toolchain, no
# network there) into the git-ignored .device/ folder: the stripped release binary and the
# stripped GPU test binaries, gzipped (gpu-check.sh unpacks them into /tmp) (kernels and SNN plans against the CPU reference), the test
# set, the ResNet-20 and ResNet-110 checkpoints and the first 2048 training images (as
# data_batch_1.bin: calibration, and the tests that read it), within the 64 MiB a device
# call carries; and the Vulkan loader packages in .gl/. Then run `scripts/gpu-check.sh`
# with carry [".device", ".gl"] (or `scripts/gpu-check.sh --small` here, on lavapipe).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${SPIKECONV_DATA:-../shared/data}"
cargo build --release
rm -rf .device
mkdir -p .device/data/cifar10 .device/data/weights .device/tests
strip -o .device/spikeconv target/release/spikeconv
gzip -9 .device/spikeconv
# The GPU tests, built once in release mode; cargo prints where each executable is.
for test in kernels snn_plan jobs families; do
    exe=$(cargo test --release --no-run --test "$test" --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])' | tail -1)
    strip -o ".device/tests/$test" "$exe"
    gzip -9 ".device/tests/$test"
done
cp "$data/cifar10/test_batch.bin" .device/data/cifar10/
head -c $((2048 * 3073)) "$data/cifar10/data_batch_1.bin" > .device/data/cifar10/data_batch_1.bin
cp "$data/weights/resnet20_cifar10_akamaster.safetensors" "$data/weights/resnet110_cifar10_fhempcnn.safetensors" \
    .device/data/weights/
if [ ! -d .gl ]; then
    grep -qx '/.gl/' .git/info/exclude || echo /.gl/ >> .git/info/exclude
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update -qq && (cd .gl && apt-get $o download libvulkan1)
fi
du -sh .device .gl
total=$(du -sbc .device .gl | tail -1 | cut -f1)
[ "$total" -le $((64 << 20)) ] || { echo "prepare-device: .device and .gl hold $total bytes, over the 64 MiB a device call carries" >&2; exit 1; }
