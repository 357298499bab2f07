# Which inputs QCFS's straight-through gradient trains (docs/METHOD.md, "Networks trained
# for conversion"): the quantization-aware networks fine-tuned with the first gradient
# (passing only on levels 1..L-1) against the same recipe rerun with the gradient of the
# clip, 0 < x < lambda (metadata qcfs_gradient). Each converted with its trained
# thresholds and signed neurons (`trained+signed`), swept to T = 4 and to T = 8 on all
# 10 000 test images, then compared image by image (exact McNemar p). NETWORKS picks the
# pairs (resnet20, resnet110): the ResNet-110's second run trains longer than a session,
# so its pair is added with `scripts/experiment.sh --resume results/qcfs-gradient`.
# input: assets/resnet20_restructured_qcfs4.safetensors
# input: assets/resnet20_restructured_qcfs4_clipgrad.safetensors
# input: assets/resnet110_restructured_qcfs4.safetensors
# input: assets/resnet110_restructured_qcfs4_clipgrad.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
# setting: NETWORKS
# setting: LIMIT
set -euo pipefail
source scripts/sweep-part.sh
NETWORKS="${NETWORKS:-resnet20 resnet110}"
for net in $NETWORKS; do
    for grad in levels clipgrad; do
        MODEL="assets/${net}_restructured_qcfs4.safetensors"
        [ "$grad" = levels ] || MODEL="assets/${net}_restructured_qcfs4_clipgrad.safetensors"
        for T in 4 8; do
            MODEL="$MODEL" sweep_part "$net-$grad-T$T" --threshold trained --neuron signed --timesteps "$T"
        done
    done
done
python3 - "$OUT" <<'PY' >"$OUT/table.md"
import json, subprocess, sys
from pathlib import Path
out = Path(sys.argv[1])
print("Correct of the test images after t steps (`trained+signed`, from the T = 8 sweep) and"
      " the ANNs as PyTorch's layers compute them in spikeconv.\n")
print("| network | gradient | ReLU ANN | quantized ANN | t = 1 | t = 2 | t = 4 | t = 8 |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for line in sorted(out.glob("*-T8.jsonl")):
    run = json.loads(line.read_text().splitlines()[0])
    net, grad = line.stem.split("-")[:2]
    n = run["images"]
    cells = [f"{c} ({100 * c / n:.2f} %)" for c in (run["correct"][i - 1] for i in (1, 2, 4, 8))]
    band = "levels 1..L-1" if grad == "levels" else "0 < x < λ"
    print(f"| {net} | {band} | {run['ann_correct']} | {run['quantized_ann']['correct']} | " + " | ".join(cells) + " |")
PY
for net in $NETWORKS; do
    for T in 4 8; do
        echo
        echo "$net, T = $T: first gradient against the clip's"
        "$SPIKECONV" paired "$OUT/$net-levels-T$T.predictions.csv" "$OUT/$net-clipgrad-T$T.predictions.csv"
    done
done >>"$OUT/table.md"
cat "$OUT/table.md"
