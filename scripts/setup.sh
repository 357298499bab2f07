#!/usr/bin/env bash
# Installs what spikeconv needs beyond the Rust toolchain: the Vulkan loader and Mesa's
# software Vulkan driver (lavapipe), so wgpu has an adapter on machines without a GPU.
set -euo pipefail
# grep without -q reads all of its input: with -q it may exit early, and the writer's
# SIGPIPE would make the pipeline fail under pipefail.
if ldconfig -p | grep 'libvulkan.so.1' >/dev/null && ls /usr/share/vulkan/icd.d/ 2>/dev/null | grep lvp_icd >/dev/null; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y --no-install-recommends mesa-vulkan-drivers libvulkan1
