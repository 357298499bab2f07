# How much of the converted ResNet-110's loss from its ANN is quantization error and how
# much deviation error, standard against restructured (issue 23, item 4): the table's
# T<T>-bias networks (channel-percentile:99.9 without and with bias correction,
# channel-ttrbr+bias; calibrated on the first 2048 images of data_batch_1, tuned and
# corrected on the first 512 for T) swept on all 10 000 test images next to their
# constant-current twins (`sweep --constant-currents`: every IF layer fed its mean
# current, docs/METHOD.md). ANN − twin is what quantization costs, twin − SNN what
# currents varying over time cost. summary.md: one row per form, T and method.
# Resumable (scripts/sweep-part.sh):
#   scripts/experiment.sh --resume results/error-split-resnet110
# input: ../shared/data/weights/resnet110_cifar10_fhempcnn.safetensors
# input: ../runs/resnet110_restructured_50k.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
# setting: TIMESTEPS
set -euo pipefail
source scripts/sweep-part.sh
for T in ${TIMESTEPS:-16 8}; do
    for form in restructured standard; do
        case $form in
            standard) MODEL=../shared/data/weights/resnet110_cifar10_fhempcnn.safetensors ;;
            restructured) MODEL=../runs/resnet110_restructured_50k.safetensors ;;
        esac
        sweep_part "${form}-T$T" --threshold channel-percentile:99.9,channel-ttrbr --bias-correction \
            --tune-timesteps "$T" --timesteps "$T" --tuning-csv "$OUT/${form}-T$T.tuning.csv"
    done
done
python3 - "$OUT" > "$OUT/summary.md" <<'PY'
import json, pathlib, re, sys
out = pathlib.Path(sys.argv[1])
print("Accuracy (%) on the test images after T steps: the ANN, each network's constant-current twin "
      "(quantization error only) and the SNN; the loss split into quantization (ANN − twin) and deviation "
      "(twin − SNN), in points.\n")
print("| form | T | method | images | ANN | twin | SNN | quantization | deviation |")
print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
parts = sorted(out.glob("*-T*.jsonl"), key=lambda p: (-int(re.search(r"T(\d+)", p.name).group(1)), p.name))
for path in parts:
    form, t = re.match(r"(\w+)-T(\d+)\.jsonl", path.name).groups()
    for line in path.read_text().splitlines():
        run = json.loads(line)
        n, ann, twin, snn = run["images"], run["ann_correct"], run["constant_current_correct"], run["correct"][-1]
        pts = lambda c: 100 * c / n
        print(f"| {form} | {t} | `{run['threshold_method']}` | {n} | {pts(ann):.2f} | {pts(twin):.2f} | {pts(snn):.2f} "
              f"| {pts(ann) - pts(twin):.2f} | {pts(twin) - pts(snn):.2f} |")
PY
cat "$OUT/summary.md"
