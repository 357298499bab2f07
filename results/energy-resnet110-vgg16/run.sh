# Accuracy and estimated energy per image together for the ResNet-110s and the VGG-16 on the
# full CIFAR-10 test set (issue 35, item 5), read from the sweep lines of the experiments
# that measured them (each line carries its accuracy after T steps and its energy
# estimate from all T steps; docs/METHOD.md "Energy": 4.6 pJ per MAC, 0.9 pJ per accumulate):
#   - results/table-resnet110-grown-signed: the shippable ResNet-110 (plain ReLUs) with
#     channel-percentile:99.9 + bias correction and signed neurons;
#   - results/table-resnet110-qcfs4-signed: its quantization-aware (QCFS L = 4) fine-tune
#     with its trained thresholds and signed neurons;
#   - results/table-vgg16-avg: the VGG-16 (average pools) with channel-percentile:99.9 + bias
#     correction and channel-ttrbr + bias correction.
# Run those first; then: scripts/experiment.sh results/energy-resnet110-vgg16
# input: results/table-resnet110-grown-signed/out/T4-bias.jsonl
# input: results/table-resnet110-grown-signed/out/T8-bias.jsonl
# input: results/table-resnet110-qcfs4-signed/out/T4-trained.jsonl
# input: results/table-resnet110-qcfs4-signed/out/T8-trained.jsonl
# status: planned (the VGG-16 is still training; remove this line when the experiment runs)
set -euo pipefail
shopt -s nullglob
r110=(results/table-resnet110-grown-signed/out/T*-bias.jsonl)
qcfs=(results/table-resnet110-qcfs4-signed/out/T*-trained.jsonl)
vgg=(results/table-vgg16-avg/out/T*-bias.jsonl)
for set in r110 qcfs vgg; do
    declare -n files=$set
    [ ${#files[@]} -gt 0 ] || { echo "energy-resnet110-vgg16: no sweep lines for $set yet (run its table experiment first)" >&2; exit 1; }
done
{
    python3 scripts/energy_table.py --method channel-percentile:99.9+bias+signed "${r110[@]}"
    echo
    python3 scripts/energy_table.py --method trained+signed "${qcfs[@]}"
    echo
    python3 scripts/energy_table.py --method channel-percentile:99.9+bias --method channel-ttrbr+bias "${vgg[@]}"
} > "$OUT/table.md"
cat "$OUT/table.md"
