#!/usr/bin/env bash
# The test command: installs the software Vulkan driver if needed, then runs every test.
# Tests read the reference data from ../shared/data (or $SPIKECONV_DATA); under CI=true a
# missing data folder or GPU adapter fails the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Without WGPU_BACKEND wgpu may silently pick a GL adapter lacking f16 and subgroups.
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export NODEVICE_SELECT=1
cargo test --locked "$@"
# The CPU-only build (no wgpu feature) of the library and the binary still compiles.
if [ "$#" -eq 0 ]; then
    cargo check --locked --quiet --no-default-features --features cli
fi
# The Python package, against the binary the tests just built (skipped with arguments,
# which select Rust tests).
if [ "$#" -eq 0 ]; then
    SPIKECONV_BIN="$PWD/target/debug/spikeconv" scripts/test-python.sh
fi
