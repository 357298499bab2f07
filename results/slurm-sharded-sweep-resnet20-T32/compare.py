"""Requires the merged report of the sharded sweep to equal the single run's: every JSON
field but the wall-clock ones, the text table, the CSV and the predictions file."""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
TIMINGS = {"seconds", "image_timesteps_per_second"}


def lines(path):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMINGS}
            for line in path.read_text().splitlines() if line.strip()]


merged, single = lines(out / "sharded/report.jsonl"), lines(out / "single.jsonl")
checks = {
    "JSON lines (but timings)": merged == single,
    "table": (out / "sharded/report.txt").read_text() == (out / "single.txt").read_text(),
    "CSV": (out / "sharded/report.csv").read_text() == (out / "single.csv").read_text(),
    "predictions": (out / "sharded/predictions.csv").read_text() == (out / "single-predictions.csv").read_text(),
}
for name, same in checks.items():
    print(f"{name}: {'identical' if same else 'DIFFERENT'}")
for record in merged:
    print(f"{record['threshold_method']}: {record['correct'][-1]}/{record['images']} at t = {record['timesteps']}, "
          f"ANN {record['ann_correct']}; per-t counts {record['correct']}")
shards = sorted((out / "sharded").glob("shard-*.json"))
for path in shards:
    r = json.loads(path.read_text())
    print(f"{path.name}: images {r['start']}..{r['end']} of {r['total']}, checksum {r['networks_checksum']}, "
          f"{r['seconds']:.1f} s")
sys.exit(0 if all(checks.values()) else 1)
