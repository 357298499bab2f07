#!/usr/bin/env bash
# Runs one experiment of results/: `scripts/experiment.sh results/NAME` executes
# results/NAME/run.sh from the repository root with OUT=results/NAME/out (emptied first), keeps its
# stdout and stderr there, and writes results/NAME/out/manifest.json: commit (and whether
# the tree had uncommitted changes), date, wall time, machine, load average at the start,
# the backend and device the run reported (from the JSON lines under out/), and the SHA-256 of every
# input run.sh names in a `# input: PATH` line, and each run's value of every environment variable run.sh names in a
# `# setting: NAME` line (e.g. TIMESTEPS, to run some parts of a long experiment first).
#
# The release binary is built here and copied to a private folder for the whole run:
# run.sh calls it as "$SPIKECONV", so a rebuild during a long run cannot change the program
# half-way (the manifest's commit is the one that binary was built from). run.sh writes its
# outputs under "$OUT". Long runs should be started with `nice` when something else must
# keep the cores.
#
# `scripts/experiment.sh --resume results/NAME` keeps the earlier outputs: for experiments
# longer than a session whose run.sh skips the parts already done (each part written to
# a temporary file and renamed when complete). The manifest then lists every run ("runs")
# and its wall time is their sum.
set -euo pipefail
cd "$(dirname "$0")/.."
resume=false
if [ "${1:-}" = "--resume" ]; then
    resume=true
    shift
fi
dir="${1:?usage: scripts/experiment.sh [--resume] results/NAME}"
dir="${dir%/}"
[ -f "$dir/run.sh" ] || { echo "$dir/run.sh: no such experiment script" >&2; exit 2; }
export OUT="$dir/out"
commit="$(git rev-parse HEAD)"
# Uncommitted changes to tracked files, the experiment's own earlier outputs not counted.
dirty="$(git status --porcelain --untracked-files=no -- . ":(exclude)$OUT" | grep -q . && echo true || echo false)"
# A run replaces the experiment's previous outputs (they are in git's history), unless resumed.
previous=""
if $resume; then
    [ -f "$OUT/manifest.json" ] && previous="$(cat "$OUT/manifest.json")"
else
    rm -rf "$OUT"
fi
mkdir -p "$OUT"
# Writes $OUT/manifest.json; called at the start (status "running", so a run cut short
# still leaves its record) and again at the end.
write_manifest() { # status t1
PREVIOUS="$previous" python3 - "$dir" "$OUT" "$commit" "$dirty" "$started" "$load" "$t0" "$2" "$1" <<'PY'
import hashlib, json, os, platform, re, subprocess, sys
exp, out, commit, dirty, started, load, t0, t1, status = sys.argv[1:]
def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
inputs = {}
settings = {}
for line in open(os.path.join(exp, "run.sh")):
    m = re.match(r"#\s*input:\s*(\S+)", line)
    if m:
        path = m.group(1)
        inputs[path] = sha256(path) if os.path.isfile(path) else "missing"
    m = re.match(r"#\s*setting:\s*(\w+)", line)
    if m and m.group(1) in os.environ:
        settings[m.group(1)] = os.environ[m.group(1)]
backends = set()
for root, dirs, names in os.walk(out):
    dirs.sort()
    for name in sorted(names):
        if not (name.endswith(".jsonl") or name == "stdout.txt"):
            continue
        for line in open(os.path.join(root, name), errors="replace"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if not isinstance(obj, dict):
                continue
            if "backend" in obj:
                backends.add((obj["backend"], obj.get("adapter") or obj.get("device") or ""))
            elif obj.get("tool") == "pytorch":  # the peer benchmark (benches/peer) on the CPU
                backends.add(("pytorch", f"cpu ({obj.get('threads')} threads), torch {obj.get('torch_version')}, "
                                         f"spikingjelly {obj.get('spikingjelly_version')}"))
cpu = ""
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except (OSError, StopIteration):
    pass
manifest = {
    "experiment": exp,
    "command": f"scripts/experiment.sh {exp}",
    "commit": commit,
    "uncommitted_changes": dirty == "true",
    "started_utc": started,
    "wall_seconds": None if status == "running" else round(float(t1) - float(t0), 1),
    "exit_status": None if status == "running" else int(status),
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()},
    "load_average_at_start": load,
    "backends": [{"backend": b, "device": d} for b, d in sorted(backends)],
    "inputs_sha256": inputs,
}
this_run = {k: manifest[k] for k in ("commit", "uncommitted_changes", "started_utc", "wall_seconds",
                                       "exit_status", "load_average_at_start")}
this_run["settings"] = settings
runs = [this_run]
if os.environ.get("PREVIOUS"):
    earlier = json.loads(os.environ["PREVIOUS"])
    runs = earlier.get("runs") or [{k: earlier.get(k) for k in this_run}]
    runs.append(this_run)
    manifest["command"] = f"scripts/experiment.sh --resume {exp}"
    manifest["wall_seconds"] = round(sum(r["wall_seconds"] or 0 for r in runs), 1)
manifest["runs"] = runs
json.dump(manifest, open(os.path.join(out, "manifest.json"), "w"), indent=2)
print(json.dumps(manifest, indent=2))
PY
}
cargo build --release --quiet
bindir="$(mktemp -d)"
trap 'rm -rf "$bindir"' EXIT
cp target/release/spikeconv "$bindir/spikeconv"
export SPIKECONV="$bindir/spikeconv"
started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
load="$(cut -d' ' -f1-3 /proc/loadavg)"
t0="$(date +%s.%N)"
status=0
write_manifest running "$t0" >/dev/null
if $resume; then
    bash "$dir/run.sh" >>"$OUT/stdout.txt" 2>>"$OUT/stderr.txt" || status=$?
else
    bash "$dir/run.sh" >"$OUT/stdout.txt" 2>"$OUT/stderr.txt" || status=$?
fi
t1="$(date +%s.%N)"
write_manifest "$status" "$t1"
exit "$status"
