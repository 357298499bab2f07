# Which layers keep the restructured ResNet-110 from its ANN at T = 16 and 8, against the
# standard ResNet-110 (issue 23, item 4): `spikeconv analyze` on the CPU backend with the
# table's methods, channel-percentile:99.9 without and with bias correction and
# channel-ttrbr+bias (tuned and corrected for that T on the first 512 calibration
# images), errors measured on the next 512 training images (calibration: the first 2048
# of data_batch_1). Per layer: quantization, deviation and total error, input variance,
# firing rate (CSV, JSON lines); plots against depth; scripts/error_by_layer.py sums them
# up by block position and stage (summary.md).
# Each part is written to a temporary name and renamed when complete, so
#   scripts/experiment.sh --resume results/analyze-resnet110-forms
# keeps the finished ones.
# input: ../shared/data/weights/resnet110_cifar10_fhempcnn.safetensors
# input: ../runs/resnet110_restructured_50k.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# setting: TIMESTEPS
set -euo pipefail
D=../shared/data
for T in ${TIMESTEPS:-16 8}; do
    for form in restructured standard; do
        case $form in
            standard) model=$D/weights/resnet110_cifar10_fhempcnn.safetensors ;;
            restructured) model=../runs/resnet110_restructured_50k.safetensors ;;
        esac
        part="$OUT/${form}_T$T"
        if [ -s "$part.jsonl" ] && [ -s "$part.csv" ]; then
            echo "${form}_T$T: done earlier, kept" >&2
            continue
        fi
        t0=$(date +%s)
        nice -n "${NICE:-0}" "$SPIKECONV" analyze --backend cpu --model "$model" --calib $D/cifar10/data_batch_1.bin \
            --threshold channel-percentile:99.9,channel-ttrbr --bias-correction --tune-images 512 \
            --timesteps "$T" --images 512 --json --csv "$part.csv.tmp" > "$part.jsonl.tmp"
        mv "$part.csv.tmp" "$part.csv"
        mv "$part.jsonl.tmp" "$part.jsonl"
        echo "${form}_T$T: $(($(date +%s) - t0)) s" >&2
    done
    if [ -s "$OUT/standard_T$T.jsonl" ] && [ -s "$OUT/restructured_T$T.jsonl" ]; then
        for metric in relative-deviation relative-total channel-mean-error; do
            "$SPIKECONV" plot --metric $metric --title "ResNet-110, standard vs restructured, T = $T" \
                --out "$OUT/${metric}_T$T.svg" "$OUT/standard_T$T.jsonl" "$OUT/restructured_T$T.jsonl"
        done
    fi
done
python3 scripts/error_by_layer.py "$OUT"/*_T*.csv > "$OUT/summary.md"
