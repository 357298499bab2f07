# The full-test-set table of the quantization-aware restructured ResNet-20 (issue 32):
# assets/resnet20_restructured_qcfs4.safetensors, fine-tuned from
# assets/resnet20_restructured.safetensors with QCFS activations of L = 4 levels
# (python/README.md), converted with `trained` (θ = λ), `trained+bias` and
# `channel-ttrbr:trained+bias`, each tuned for the T it is read at, T = 1, 2, 4, 8, 16, 32, 64
# (scripts/qcfs-table.sh). The plain restructured network's table is
# results/table-resnet20-restructured.
# Resumable:
#   scripts/experiment.sh results/table-resnet20-qcfs4            (from scratch)
#   scripts/experiment.sh --resume results/table-resnet20-qcfs4   (keeps finished parts)
# input: assets/resnet20_restructured_qcfs4.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
# setting: TIMESTEPS
# setting: CALIB_IMAGES
# setting: TUNE_IMAGES
# setting: BACKEND
# setting: LIMIT
set -euo pipefail
MODEL="${MODEL:-assets/resnet20_restructured_qcfs4.safetensors}" exec bash scripts/qcfs-table.sh
