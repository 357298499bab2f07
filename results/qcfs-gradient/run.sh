# Which inputs QCFS's straight-through gradient trains (docs/METHOD.md, "Networks trained
# for conversion"): the quantization-aware networks fine-tuned with the first gradient
# (passing only on levels 1..L-1) against the same recipe rerun with the gradient of the
# clip, 0 < x < lambda (metadata qcfs_gradient). Each converted with its trained
# thresholds and signed neurons (`trained+signed`), swept to T = 4 and to T = 8 on all
# 10 000 test images, then compared image by image (exact McNemar p). NETWORKS names the
# pairs (resnet20; resnet110 once its clip-gradient network is in assets/: add its two
# `# input:` lines and run `NETWORKS="resnet20 resnet110" scripts/experiment.sh --resume
# results/qcfs-gradient`, which keeps the finished parts).
# input: assets/resnet20_restructured_qcfs4.safetensors
# input: assets/resnet20_restructured_qcfs4_clipgrad.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
# setting: NETWORKS
# setting: LIMIT
set -euo pipefail
source scripts/sweep-part.sh
NETWORKS="${NETWORKS:-resnet20}"
for net in $NETWORKS; do
    for grad in levels clipgrad; do
        MODEL="assets/${net}_restructured_qcfs4.safetensors"
        [ "$grad" = levels ] || MODEL="assets/${net}_restructured_qcfs4_clipgrad.safetensors"
        for T in 4 8; do
            MODEL="$MODEL" sweep_part "$net-$grad-T$T" --threshold trained --neuron signed --timesteps "$T"
        done
    done
done
python3 - "$OUT" $NETWORKS <<'PY' >"$OUT/table.md"
import csv, json, math, sys
from pathlib import Path
out, networks = Path(sys.argv[1]), sys.argv[2:]

def right(path):
    # Per image: did the SNN (the last column, read after the sweep's T) get it right?
    with open(path) as f:
        rows = list(csv.reader(f))
    return [row[1] == row[-1] for row in rows[1:]]

print("Correct of the test images after t steps (`trained+signed`, from the T = 8 sweep), and"
      " each network's ANN with plain ReLUs and with its quantized activation (spikeconv).\n")
print("| network | gradient | ReLU ANN | quantized ANN | t = 1 | t = 2 | t = 4 | t = 8 |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for net in networks:
    for grad, band in (("levels", "levels 1..L-1"), ("clipgrad", "0 < x < λ")):
        run = json.loads((out / f"{net}-{grad}-T8.jsonl").read_text().splitlines()[0])
        n = run["images"]
        cells = [f"{c} ({100 * c / n:.2f} %)" for c in (run["correct"][t - 1] for t in (1, 2, 4, 8))]
        print(f"| {net} | {band} | {run['ann_correct']} | {run['quantized_ann']['correct']} | " + " | ".join(cells) + " |")
print("\nImage by image, each T its own sweep: images only the first gradient's network / only the"
      " clip gradient's gets right, and the exact McNemar p (two-sided binomial).\n")
print("| network | T | only first | only clip | p |")
print("| --- | ---: | ---: | ---: | ---: |")
for net in networks:
    for t in (4, 8):
        old = right(out / f"{net}-levels-T{t}.predictions.csv")
        new = right(out / f"{net}-clipgrad-T{t}.predictions.csv")
        b = sum(o and not w for o, w in zip(old, new))
        c = sum(w and not o for o, w in zip(old, new))
        p = min(1.0, 2 * sum(math.comb(b + c, k) for k in range(min(b, c) + 1)) / 2 ** (b + c))
        print(f"| {net} | {t} | {b} | {c} | {p:.2g} |")
PY
cat "$OUT/table.md"
