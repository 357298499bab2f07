# The full-test-set TTRBR table for the restructured ResNet-20 (issue 23): every T of 4, 8,
# 16, 32, 64 with the best baseline (channel-percentile:99.9, with and without bias
# correction), ttrbr, channel-ttrbr and channel-ttrbr with bias correction, each network
# tuned for its T, calibrated and tuned on training images (scripts/ttrbr-table.sh says how).
# The network: assets/resnet20_restructured.safetensors (fine-tuned here on all 50 000
# training images; assets/README.md).
# Resumable:
#   scripts/experiment.sh results/table-resnet20-restructured            (from scratch)
#   scripts/experiment.sh --resume results/table-resnet20-restructured   (keeps finished parts)
# input: assets/resnet20_restructured.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
# setting: TIMESTEPS
# setting: CALIB_IMAGES
# setting: TUNE_IMAGES
# setting: BACKEND
# setting: LIMIT
set -euo pipefail
MODEL=assets/resnet20_restructured.safetensors exec bash scripts/ttrbr-table.sh
