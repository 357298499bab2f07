# The full-test-set TTRBR table for the standard ResNet-20 (issue 23): every T of 4, 8, 16,
# 32, 64 with the best baseline (channel-percentile:99.9, with and without bias correction),
# ttrbr, channel-ttrbr and channel-ttrbr with bias correction, each network tuned for its T,
# calibrated and tuned on training images (scripts/ttrbr-table.sh says how). Resumable:
#   scripts/experiment.sh results/table-resnet20-standard            (from scratch)
#   scripts/experiment.sh --resume results/table-resnet20-standard   (keeps finished parts)
# input: ../shared/data/weights/resnet20_cifar10_akamaster.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
# setting: TIMESTEPS
# setting: CALIB_IMAGES
# setting: TUNE_IMAGES
# setting: BACKEND
# setting: LIMIT
set -euo pipefail
MODEL=../shared/data/weights/resnet20_cifar10_akamaster.safetensors exec bash scripts/ttrbr-table.sh
