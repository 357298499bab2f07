# The quantization-aware restructured ResNet-110 (assets/resnet110_restructured_qcfs4.safetensors,
# QCFS L = 4, fine-tuned from the grown BSD-2-Clause-derived ResNet-110 of
# assets/resnet110_restructured.safetensors) converted to signed IF neurons (`--neuron
# signed`, docs/METHOD.md "Signed neurons"): `trained+signed` (θ = λ, membranes from θ/2),
# `trained+bias+signed` and `channel-ttrbr:trained+bias+signed`, each tuned for the T it is
# read at, on all 10 000 test images (scripts/qcfs-table.sh). Issue 32's criteria: within
# 0.5 points of its ANN at T = 8, 1.5 points at T = 4.
# Resumable, small T first (TIMESTEPS="4 8" runs the criteria's columns):
#   scripts/experiment.sh results/table-resnet110-qcfs4-signed            (from scratch)
#   scripts/experiment.sh --resume results/table-resnet110-qcfs4-signed   (keeps finished parts)
# input: assets/resnet110_restructured_qcfs4.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
# setting: TIMESTEPS
# setting: CALIB_IMAGES
# setting: TUNE_IMAGES
# setting: BACKEND
# setting: LIMIT
set -euo pipefail
MODEL="${MODEL:-assets/resnet110_restructured_qcfs4.safetensors}" NEURON=signed exec bash scripts/qcfs-table.sh
