# spikeconv's CPU backend against SpikingJelly 2.0 on PyTorch (CPU), side by side in one run:
# ResNet-20 on the first 256 test images, ResNet-110 on the first 128, T = 32 (see
# benches/peer/README.md for what is held equal). Needs the peer's virtual environment
# (benches/peer/run.sh's header says how to make it) and nothing else running. Run with:
# scripts/experiment.sh results/peer-spikingjelly-T32
# input: ../shared/data/weights/resnet20_cifar10_akamaster.safetensors
# input: ../shared/data/weights/resnet110_cifar10_fhempcnn.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
set -euo pipefail
MODELS=resnet20 LIMIT=256 benches/peer/run.sh --out "$OUT"
MODELS=resnet110 LIMIT=128 benches/peer/run.sh --out "$OUT"
