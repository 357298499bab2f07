# The full CIFAR-10 test set through the converted ResNet-20 (the sweep of
# results/cpu-full-sweep-resnet20-T32: channel-percentile:99.9, T = 32, calibration on
# the first 2048 images of data_batch_1) as 4 shards of a Slurm job array on a real
# single-node Slurm cluster (deploy/slurm/local-cluster.sh: slurmctld, slurmd and munge on
# this machine), merged by a job that depends on them (afterok), then the same sweep run
# once unsharded; compare.py requires the merged report (table, CSV, JSON lines but the
# timings) and predictions to equal the single run's exactly. Needs root (it starts the
# daemons). Run with: scripts/experiment.sh results/slurm-sharded-sweep-resnet20-T32
# input: ../shared/data/weights/resnet20_cifar10_akamaster.safetensors
# input: ../shared/data/cifar10/data_batch_1.bin
# input: ../shared/data/cifar10/test_batch.bin
set -euo pipefail
D="$(cd ../shared/data && pwd)"
OUT="$(cd "$OUT" && pwd)"
ARGS="--backend cpu --model $D/weights/resnet20_cifar10_akamaster.safetensors --calib $D/cifar10/data_batch_1.bin --threshold channel-percentile:99.9 --data $D/cifar10/test_batch.bin --timesteps 32"
deploy/slurm/local-cluster.sh up > "$OUT/cluster.txt"
sbatch --version >> "$OUT/cluster.txt"
# One core per task: two shards run at a time on this 2-core machine.
export RAYON_NUM_THREADS=1 SPIKECONV
deploy/slurm/submit.sh 4 "$OUT/sharded" -- $ARGS | tee "$OUT/jobs.txt"
merge_job=$(sed -n 's/.*merge: job \([0-9]*\).*/\1/p' "$OUT/jobs.txt")
while squeue -h -j "$merge_job" 2>/dev/null | grep -q .; do
    sleep 5
done
squeue -h >> "$OUT/cluster.txt" || true
cp "$OUT"/sharded/*.out "$OUT/" 2>/dev/null || true
test -s "$OUT/sharded/report.jsonl" || { echo "the merge job wrote no report" >&2; exit 1; }
# The single run with the shards' one thread: the report names the device (threads
# included), so only then can its JSON equal the merged one field for field.
"$SPIKECONV" sweep $ARGS --json --predictions "$OUT/single-predictions.csv" > "$OUT/single.jsonl"
"$SPIKECONV" sweep $ARGS --csv "$OUT/single.csv" > "$OUT/single.txt" 2>/dev/null
python3 results/slurm-sharded-sweep-resnet20-T32/compare.py "$OUT" | tee "$OUT/comparison.txt"
