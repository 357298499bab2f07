# Which layers carry the remaining conversion error, standard against restructured
# ResNet-20 (issue 23, item 4): `spikeconv analyze` on the CPU backend at T = 8 and 16,
# channel-percentile:99.9 and channel-ttrbr (tuned for that T on the first 512 calibration
# images), errors measured on those 512 training images (calibration: the first 2048 of
# data_batch_1). Per layer: quantization, deviation and total error, input variance,
# firing rate (CSV, JSON lines); plots of the deviation error relative to each layer's
# threshold, and of the mean per-channel error, against depth.
# Run with: scripts/experiment.sh results/analyze-resnet20-forms
# input: ../shared/data/weights/resnet20_cifar10_akamaster.safetensors
# input: assets/resnet20_restructured.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
set -euo pipefail
D=../shared/data
for T in 8 16; do
    for form in standard restructured; do
        case $form in
            standard) model=$D/weights/resnet20_cifar10_akamaster.safetensors ;;
            restructured) model=assets/resnet20_restructured.safetensors ;;
        esac
        "$SPIKECONV" analyze --backend cpu --model "$model" --calib $D/cifar10/data_batch_1.bin \
            --threshold channel-percentile:99.9,channel-ttrbr --tune-images 512 --timesteps $T --images 512 \
            --json --csv "$OUT/${form}_T$T.csv" > "$OUT/${form}_T$T.jsonl"
    done
    for metric in relative-deviation relative-total channel-mean-error; do
        "$SPIKECONV" plot --metric $metric --title "ResNet-20, standard vs restructured, T = $T" \
            --out "$OUT/${metric}_T$T.svg" "$OUT/standard_T$T.jsonl" "$OUT/restructured_T$T.jsonl"
    done
done
