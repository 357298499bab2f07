#!/usr/bin/env bash
# Side-by-side CPU benchmark: SpikingJelly (PyTorch) versus spikeconv's CPU backend on the
# same CIFAR ResNet checkpoints, test images, timesteps and thresholds. See README.md here.
#
# Requirements
#   * PyTorch + SpikingJelly in a virtual environment OUTSIDE the repository, by default
#     /work/peer-venv (override with PEER_VENV=/path/to/venv):
#         python3 -m venv /work/peer-venv
#         /work/peer-venv/bin/pip install torch spikingjelly numpy safetensors
#     PyPI's torch wheel is the large CUDA-linked one (several GB); only its CPU path is
#     used here. Tested with torch 2.15.0, spikingjelly 2.0.0, numpy 2.4.6, safetensors 0.8.0.
#   * spikeconv built in release mode: cargo build --release (target/release/spikeconv with
#     the `bench` subcommand; without it only the SpikingJelly side runs).
#   * Data and weights in ../shared/data (CIFAR-10 binary batches, safetensors weights).
#   * NOTHING ELSE RUNNING: both sides are timed on the same cores (compare `uptime`'s load
#     average printed at the end; a load well above 0 means the figures are not final).
#
# Usage (from anywhere):  benches/peer/run.sh [--out DIR]      (default DIR: target/peer/)
# Settings (environment variables, defaults in brackets):
#   TIMESTEPS [32]  LIMIT [256] test images  BATCHES [16,32,64] SpikingJelly batch sizes
#   THREADS [2] torch threads and RAYON_NUM_THREADS for spikeconv  N_CALIB [512]
#   STEP_MODES [both] SpikingJelly path: m, s or both   STAT [positive]  V_INIT [0.5]
#   PERCENTILE [99.9] threshold percentile (SpikingJelly mode 'P%', spikeconv percentile:P)
#   MODELS ["resnet20 resnet110"]  ANN [1] also time the PyTorch ANN forward
#   SPIKECONV [target/release/spikeconv]  PEER_VENV [/work/peer-venv]  NICE [0] niceness
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"

OUT="target/peer"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        --out=*) OUT="${1#--out=}"; shift ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (only --out DIR)" >&2; exit 2 ;;
    esac
done

PEER_VENV="${PEER_VENV:-/work/peer-venv}"
TIMESTEPS="${TIMESTEPS:-32}"
LIMIT="${LIMIT:-256}"
BATCHES="${BATCHES:-16,32,64}"
THREADS="${THREADS:-2}"
N_CALIB="${N_CALIB:-512}"
STEP_MODES="${STEP_MODES:-both}"
STAT="${STAT:-positive}"
V_INIT="${V_INIT:-0.5}"
PERCENTILE="${PERCENTILE:-99.9}"
MODELS="${MODELS:-resnet20 resnet110}"
ANN="${ANN:-1}"
SPIKECONV="${SPIKECONV:-target/release/spikeconv}"
NICE="${NICE:-0}"
DATA="../shared/data"
CALIB="$DATA/cifar10/data_batch_1.bin"
TEST="$DATA/cifar10/test_batch.bin"
PY="$PEER_VENV/bin/python"

weights_of() {
    case "$1" in
        resnet20) echo "$DATA/weights/resnet20_cifar10_akamaster.safetensors" ;;
        resnet56) echo "$DATA/weights/resnet56_cifar10_akamaster.safetensors" ;;
        resnet110) echo "$DATA/weights/resnet110_cifar10_fhempcnn.safetensors" ;;
        *) echo "unknown model $1 (resnet20, resnet56, resnet110)" >&2; return 1 ;;
    esac
}

if [ ! -x "$PY" ] || ! "$PY" -c 'import torch, spikingjelly, numpy, safetensors' 2>/dev/null; then
    echo "error: $PY cannot import torch, spikingjelly, numpy and safetensors." >&2
    echo "Create the environment outside the repository (or point PEER_VENV at one):" >&2
    echo "    python3 -m venv $PEER_VENV && $PEER_VENV/bin/pip install torch spikingjelly numpy safetensors" >&2
    exit 1
fi
for f in "$CALIB" "$TEST"; do
    [ -f "$f" ] || { echo "error: $f not found (run from a checkout next to ../shared/data)" >&2; exit 1; }
done

# spikeconv's `bench` subcommand: flags it has are passed, a missing binary or subcommand
# only skips that side.
SC_OK=0
SC_NOTE=""
SC_EXTRA=()
if [ ! -x "$SPIKECONV" ]; then
    SC_NOTE="$SPIKECONV not found: build it with 'cargo build --release'; only SpikingJelly was run"
elif ! SC_HELP="$("$SPIKECONV" bench --help 2>&1)"; then
    SC_NOTE="$SPIKECONV has no 'bench' subcommand yet; only SpikingJelly was run"
else
    SC_OK=1
    grep -q -- '--calib-images' <<<"$SC_HELP" && SC_EXTRA+=(--calib-images "$N_CALIB")
    grep -q -- '--v-init' <<<"$SC_HELP" && SC_EXTRA+=(--v-init "$V_INIT")
    grep -q -- '--threshold' <<<"$SC_HELP" && SC_EXTRA+=(--threshold "percentile:$PERCENTILE")
fi
[ -n "$SC_NOTE" ] && echo "note: $SC_NOTE" >&2

mkdir -p "$OUT"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RUN_DIR="$OUT/$STAMP"
mkdir -p "$RUN_DIR"
ANN_FLAG=()
[ "$ANN" = 1 ] && ANN_FLAG=(--ann)

for model in $MODELS; do
    weights="$(weights_of "$model")"
    [ -f "$weights" ] || { echo "error: $weights not found" >&2; exit 1; }
    echo "== $model, T=$TIMESTEPS, $LIMIT test images: SpikingJelly (batches $BATCHES, step mode $STEP_MODES)" >&2
    nice -n "$NICE" "$PY" benches/peer/spikingjelly_peer.py \
        --model "$weights" --name "$model" --calib "$CALIB" --data "$TEST" \
        --n-calib "$N_CALIB" --timesteps "$TIMESTEPS" --limit "$LIMIT" --batch "$BATCHES" \
        --threads "$THREADS" --step-mode "$STEP_MODES" --stat "$STAT" --v-init "$V_INIT" --percentile "$PERCENTILE" "${ANN_FLAG[@]}" \
        > "$RUN_DIR/spikingjelly_$model.jsonl" 2> "$RUN_DIR/spikingjelly_$model.log" \
        || { echo "error: the SpikingJelly run failed, see $RUN_DIR/spikingjelly_$model.log" >&2; tail -5 "$RUN_DIR/spikingjelly_$model.log" >&2; exit 1; }
    grep -v 'it/s]' "$RUN_DIR/spikingjelly_$model.log" | grep -v '^\s*$' | sed 's/^/   /' >&2 || true
    if [ "$SC_OK" = 1 ]; then
        echo "== $model, T=$TIMESTEPS, $LIMIT test images: spikeconv --backend cpu" >&2
        if RAYON_NUM_THREADS="$THREADS" nice -n "$NICE" "$SPIKECONV" bench --model "$weights" --calib "$CALIB" --data "$TEST" \
            --timesteps "$TIMESTEPS" --limit "$LIMIT" --backend cpu --json "${SC_EXTRA[@]}" \
            > "$RUN_DIR/spikeconv_$model.jsonl" 2> "$RUN_DIR/spikeconv_$model.log"; then
            grep -q '"image_timesteps_per_second"' "$RUN_DIR/spikeconv_$model.jsonl" \
                || echo "warning: spikeconv printed no JSON line with image_timesteps_per_second (see $RUN_DIR/spikeconv_$model.*)" >&2
        else
            echo "warning: spikeconv bench failed for $model (see $RUN_DIR/spikeconv_$model.log):" >&2
            tail -3 "$RUN_DIR/spikeconv_$model.log" >&2 || true
        fi
    fi
done

# Machine and run context, then the table (also saved as summary.txt / summary.json).
CPU="$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
NPROC="$(nproc)"
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git status --porcelain 2>/dev/null | grep -q . && echo ' (working tree modified)' || true)"
DATE="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
LOAD="$(uptime | sed 's/.*load average[s]*: //')"

"$PY" - "$RUN_DIR" "$MODELS" "$TIMESTEPS" "$CPU" "$NPROC" "$COMMIT$DIRTY" "$DATE" "$LOAD" "$THREADS" "$SC_NOTE" <<'EOF' | tee "$RUN_DIR/summary.txt"
import json, sys
from pathlib import Path

run_dir, models, timesteps, cpu, nproc, commit, date, load, threads, sc_note = sys.argv[1:]
run_dir = Path(run_dir)

def lines(path):
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out

rows, summary = [], []
for model in models.split():
    sj = lines(run_dir / f"spikingjelly_{model}.jsonl")
    best = next((r for r in sj if r.get("kind") == "best"), None)
    ann = [r for r in sj if r.get("kind") == "ann"]
    sc = [r for r in lines(run_dir / f"spikeconv_{model}.jsonl") if "image_timesteps_per_second" in r]
    sc = max(sc, key=lambda r: r["image_timesteps_per_second"]) if sc else None
    sj_rate = best["image_timesteps_per_second"] if best else None
    sc_rate = sc["image_timesteps_per_second"] if sc else None
    ratio = sc_rate / sj_rate if sj_rate and sc_rate else None
    sc_acc = None
    if sc:
        sc_acc = sc.get("accuracy_at_T", sc.get("accuracy"))
        if sc_acc is None and isinstance(sc.get("correct_at_t"), int) and sc.get("images"):
            sc_acc = sc["correct_at_t"] / sc["images"]
    per_mode = best.get("best_per_step_mode", {}) if best else {}
    rows.append([
        model, timesteps,
        f"{sj_rate:.0f} (batch {best['batch']}, mode {best['step_mode']})" if best else "n/a",
        f"{best['accuracy_at_T']:.3f}" if best else "n/a",
        f"{sc_rate:.0f} (batch {sc.get('batch', '?')}, {sc.get('device', '?')})" if sc else "n/a",
        f"{sc_acc:.3f}" if isinstance(sc_acc, (int, float)) else "n/a",
        f"{ratio:.2f}x" if ratio else "n/a",
    ])
    summary.append({"model": model, "timesteps": int(timesteps), "spikingjelly_best": best, "spikingjelly_per_step_mode": per_mode,
                    "pytorch_ann": ann, "spikeconv": sc, "ratio_spikeconv_over_spikingjelly": ratio})

head = ["model", "T", "SpikingJelly best img-ts/s", "SJ acc@T", "spikeconv cpu img-ts/s", "sc acc@T", "ratio sc/SJ"]
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))
print(fmt(head))
print("  ".join("-" * w for w in widths))
for r in rows:
    print(fmt(r))
print()
for s in summary:
    if s["spikingjelly_per_step_mode"]:
        modes = ", ".join(f"{m}: {v:.0f}" for m, v in s["spikingjelly_per_step_mode"].items() if v)
        print(f"{s['model']}: SpikingJelly best per step mode (img-ts/s): {modes}")
    for a in s["pytorch_ann"]:
        print(f"{s['model']}: PyTorch ANN batch {a['batch']}: {a['images_per_second']:.0f} images/s")
    sc = s["spikeconv"]
    if sc and isinstance(sc.get("ann_images_per_second"), (int, float)):
        print(f"{s['model']}: spikeconv cpu ANN batch {sc.get('ann_batch', '?')}: {sc['ann_images_per_second']:.0f} images/s")
best = next((s["spikingjelly_best"] for s in summary if s["spikingjelly_best"]), None)
if best:
    print(f"SpikingJelly {best['spikingjelly_version']}, torch {best['torch_version']}, {threads} threads; "
          f"thresholds: {best['mode']} {best['statistic']}, {best['n_calib']} calibration images, v_init {best['v_init']}, reset by subtraction")
if sc_note:
    print(f"spikeconv: {sc_note}")
print(f"machine: {cpu}, nproc {nproc}; commit {commit}; {date}; load average {load}")
(run_dir / "summary.json").write_text(json.dumps({"rows": summary, "cpu": cpu, "nproc": int(nproc), "commit": commit,
                                                  "date": date, "load_average": load, "threads": int(threads)}, indent=1))
EOF
echo "raw JSON lines and logs: $RUN_DIR" >&2
