# The restructured ResNet-110 grown from the BSD-2-Clause ResNet-56
# (assets/resnet110_restructured.safetensors, plain ReLUs, issue 32) converted to signed IF
# neurons (`--neuron signed`, docs/METHOD.md "Signed neurons"): channel-percentile:99.9
# without and with bias correction and channel-ttrbr+bias, each tuned for the T it is read
# at, on all 10 000 test images (scripts/ttrbr-table.sh, its `bias` part).
# Resumable:
#   scripts/experiment.sh results/table-resnet110-grown-signed            (from scratch)
#   scripts/experiment.sh --resume results/table-resnet110-grown-signed   (keeps finished parts)
# input: assets/resnet110_restructured.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
# setting: TIMESTEPS
# setting: CALIB_IMAGES
# setting: TUNE_IMAGES
# setting: BACKEND
# setting: LIMIT
set -euo pipefail
MODEL=assets/resnet110_restructured.safetensors NEURON=signed PARTS=bias TIMESTEPS="${TIMESTEPS:-4 8 16 32}" \
    exec bash scripts/ttrbr-table.sh
