# 1000 seeded mutations each of the restructured ResNet-20 checkpoint, a converted SNN
# file of it, four CIFAR-10 test records, a prediction CSV and sweep JSON lines (tests/mutations.rs with
# SPIKECONV_MUTANTS=1000): every mutant must load and run to counts within its images, or
# fail with a one-line error; a panic fails the run. The counts of each outcome are in
# stdout.txt / stderr.txt. Run with: scripts/experiment.sh results/mutations-1000
# input: assets/resnet20_restructured.safetensors
# input: ../shared/data/cifar10/test_batch.bin
set -euo pipefail
SPIKECONV_MUTANTS=1000 cargo test --locked --release --test mutations -- --nocapture --test-threads 1 2>&1 \
    | grep -E 'mutants:|test result|panicked|^test |"backend"' | tee "$OUT/summary.txt"
grep -o '{[^}]*"backend"[^}]*}' "$OUT/summary.txt" > "$OUT/backend.jsonl"
grep -q "test result: ok. 4 passed" "$OUT/summary.txt"
