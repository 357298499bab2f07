#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh needs on a device machine (no Rust toolchain, no
# network there) into the git-ignored .device/ folder: the stripped release binary, the
# test set, the three checkpoints and 2048 calibration images (64 MiB carry limit), and the
# Vulkan loader packages in .gl/. Then: run `scripts/gpu-check.sh` with carry [".device", ".gl"].
set -euo pipefail
cd "$(dirname "$0")/.."
data="${SPIKECONV_DATA:-../shared/data}"
cargo build --release
mkdir -p .device/data/cifar10 .device/data/weights
strip -o .device/spikeconv target/release/spikeconv
cp "$data/cifar10/test_batch.bin" .device/data/cifar10/
# 2048 training records (3073 bytes each) for calibration.
head -c $((2048 * 3073)) "$data/cifar10/data_batch_1.bin" > .device/data/cifar10/calib_2048.bin
cp "$data"/weights/*.safetensors .device/data/weights/
if [ ! -d .gl ]; then
    grep -qx '/.gl/' .git/info/exclude || echo /.gl/ >> .git/info/exclude
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update -qq && (cd .gl && apt-get $o download libvulkan1)
fi
du -sh .device .gl
