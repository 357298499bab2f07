#!/usr/bin/env bash
# Installs what spikeconv needs beyond the Rust toolchain: the Vulkan loader and Mesa's
# software Vulkan driver (lavapipe), so wgpu has an adapter on machines without a GPU.
set -euo pipefail
if ldconfig -p | grep -q 'libvulkan.so.1' && ls /usr/share/vulkan/icd.d/ 2>/dev/null | grep -q lvp_icd; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y --no-install-recommends mesa-vulkan-drivers libvulkan1
