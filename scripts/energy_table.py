#!/usr/bin/env python3
"""Accuracy and estimated energy per image, one row per network, method and T, from the
JSON lines of ``spikeconv sweep --json`` runs (each line: one method swept to its T).

Usage: scripts/energy_table.py RUNS.jsonl... > table.md
"""
import json
import sys
from pathlib import Path


def main(paths):
    rows = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if not line.strip():
                continue
            run = json.loads(line)
            energy = run.get("energy")
            if energy is None:
                sys.exit(f"{path}: a sweep line without `energy` (written before the estimate)")
            t = run["timesteps"]
            rows.append((
                Path(run["model"]).stem, run["threshold_method"], t,
                100.0 * run["correct"][-1] / run["images"], 100.0 * run["ann_correct"] / run["images"],
                energy["snn_uj_per_image"], energy["ann_uj_per_image"], energy["ann_over_snn"],
                run["synops_per_image"] / 1e6, run["images"],
            ))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    print("| network | method | T | SNN accuracy | ANN accuracy | SNN energy (µJ/image) | ANN energy (µJ/image) | ANN / SNN | SOPs (M/image) | images |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for net, method, t, acc, ann, snn_uj, ann_uj, ratio, sops, images in rows:
        print(f"| {net} | {method} | {t} | {acc:.2f} % | {ann:.2f} % | {snn_uj:.1f} | {ann_uj:.1f} | {ratio:.2f}× | {sops:.1f} | {images} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
