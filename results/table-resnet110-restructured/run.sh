# The full-test-set TTRBR table for the restructured ResNet-110 (issue 23): every T of 4, 8,
# 16, 32, 64 with the best baseline (channel-percentile:99.9, with and without bias
# correction), ttrbr, channel-ttrbr and channel-ttrbr with bias correction, each network
# tuned for its T, calibrated and tuned on training images (scripts/ttrbr-table.sh says how).
# The network: ../runs/resnet110_restructured_50k.safetensors, made by
# python/finetune_restructured.py (python/README.md has the command); it stays outside the
# repository because the standard ResNet-110 it derives from carries no license.
# Resumable:
#   scripts/experiment.sh results/table-resnet110-restructured            (from scratch)
#   scripts/experiment.sh --resume results/table-resnet110-restructured   (keeps finished parts)
# input: ../runs/resnet110_restructured_50k.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
# setting: TIMESTEPS
# setting: CALIB_IMAGES
# setting: TUNE_IMAGES
# setting: BACKEND
# setting: LIMIT
set -euo pipefail
MODEL=../runs/resnet110_restructured_50k.safetensors exec bash scripts/ttrbr-table.sh
