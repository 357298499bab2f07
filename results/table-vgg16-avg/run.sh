# VGG-16 with BatchNorm and average pooling, trained here from scratch (issue 35; recipe in
# python/README.md; 59 MB, kept outside the repository at ../runs/vgg16_avg.safetensors,
# MODEL=... to point elsewhere): channel-percentile:99.9 without and with bias correction and
# channel-ttrbr+bias, each tuned for the T it is read at, on all 10 000 test images
# (scripts/ttrbr-table.sh, its `bias` part). Issue 35's criterion: channel-ttrbr+bias within
# 1 point of the ANN at T = 32 (TIMESTEPS=32 runs that column first).
# Resumable:
#   scripts/experiment.sh results/table-vgg16-avg            (from scratch)
#   scripts/experiment.sh --resume results/table-vgg16-avg   (keeps finished parts)
# input: ../runs/vgg16_avg.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
# setting: MODEL
# setting: TIMESTEPS
# setting: CALIB_IMAGES
# setting: TUNE_IMAGES
# setting: BACKEND
# setting: LIMIT
# status: planned (the VGG-16 is still training; remove this line when the experiment runs)
set -euo pipefail
MODEL="${MODEL:-../runs/vgg16_avg.safetensors}" PARTS=bias TIMESTEPS="${TIMESTEPS:-4 8 16 32 64}" \
    exec bash scripts/ttrbr-table.sh
