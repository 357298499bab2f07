#!/usr/bin/env python3
"""Accuracy at t = 4, 8, 16, 32, 64 per max-pool strategy and method, from the JSON lines of
``spikeconv sweep --json`` runs swept to T = 64 (results/maxpool-*). A method tuned for
several T (one network each) gives one row: each column read from the network tuned for
that column's t.

Usage: scripts/maxpool_table.py RUNS.jsonl... > table.md
"""
import json
import sys
from pathlib import Path

COLUMNS = (1, 2, 4, 8, 16, 32, 64)


def main(paths):
    print("| run | network | max pools in the SNN | method | ANN | " + " | ".join(f"t = {t}" for t in COLUMNS) + " |")
    print("| --- | --- | --- | --- | ---: | " + " | ".join("---:" for _ in COLUMNS) + " |")
    for path in paths:
        rows = {}
        for line in Path(path).read_text().splitlines():
            if not line.strip():
                continue
            run = json.loads(line)
            images = run["images"]
            method = run["threshold_method"]
            tuned = run["tuned_for_timesteps"]
            row = rows.setdefault(method, {"run": run, "cells": {}})
            for t in COLUMNS:
                if t <= len(run["correct"]) and (tuned is None or tuned == t):
                    row["cells"][t] = 100.0 * run["correct"][t - 1] / images
        for method, row in rows.items():
            run = row["run"]
            ann = 100.0 * run["ann_correct"] / run["images"]
            label = method + (" (tuned per T)" if run["tuned_for_timesteps"] is not None else "")
            cells = " | ".join(f"{row['cells'][t]:.2f} %" if t in row["cells"] else "" for t in COLUMNS)
            print(f"| {Path(path).stem} | {Path(run['model']).stem} | {run.get('max_pooling', 'none')} | {label} "
                  f"| {ann:.2f} % | {cells} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
