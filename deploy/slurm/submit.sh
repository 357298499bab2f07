#!/usr/bin/env bash
# Submits a sweep as N shards (a Slurm job array) and the merge job that waits for all of
# them (afterok). Prints the two job ids.
#
#   deploy/slurm/submit.sh N OUT_DIR -- SWEEP_ARGS...
#
# e.g. the whole test set through ResNet-20 in 4 shards:
#   deploy/slurm/submit.sh 4 /shared/sweeps/r20 -- --backend cpu \
#       --model assets/resnet20_restructured.safetensors --calib /data/data_batch_1.bin \
#       --threshold channel-percentile:99.9 --data /data/test_batch.bin --timesteps 32
# SPIKECONV (the binary, default spikeconv on PATH) and SBATCH_FLAGS (extra sbatch flags:
# partition, account, time) are read from the environment. Paths must be visible on every node.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shards="${1:?usage: submit.sh N OUT_DIR -- SWEEP_ARGS...}"
out="${2:?usage: submit.sh N OUT_DIR -- SWEEP_ARGS...}"
shift 2
[ "${1:-}" = "--" ] && shift
[ "$#" -gt 0 ] || { echo "submit.sh: no sweep arguments after --" >&2; exit 2; }
mkdir -p "$out"
export SWEEP_OUT="$out" SWEEP_ARGS="$*" SHARDS="$shards" SPIKECONV="${SPIKECONV:-spikeconv}"
# shellcheck disable=SC2086 # SBATCH_FLAGS is a list of flags
array=$(sbatch --parsable ${SBATCH_FLAGS:-} --array="0-$((shards - 1))" --chdir="$out" \
    --export=ALL "$here/sweep-shard.sbatch")
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_FLAGS:-} --dependency="afterok:${array%%;*}" --chdir="$out" \
    --export=ALL "$here/merge.sbatch")
echo "shards: job ${array%%;*} (array 0-$((shards - 1))); merge: job ${merge%%;*}"
