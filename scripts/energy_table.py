#!/usr/bin/env python3
"""Accuracy and estimated energy per image, one row per network, method and T, from the
JSON lines of ``spikeconv sweep --json`` runs (each line: one method swept to its T).

Usage: scripts/energy_table.py [--method NAME]... RUNS.jsonl... > table.md

``--method`` keeps only the lines of the named threshold methods (repeatable; default:
all), so one table can draw on the outputs of several experiments. For a quantization-aware
network (a sweep line with ``quantized_ann``) the ANN column is its quantized ANN, the
network the SNN converts, marked "(quantized)".
"""
import argparse
import json
import sys
from pathlib import Path


def rows_of(path, methods):
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        run = json.loads(line)
        if methods and run["threshold_method"] not in methods:
            continue
        energy = run.get("energy")
        if energy is None:
            sys.exit(f"{path}:{number}: a sweep line without `energy` (written before the estimate)")
        quantized = run.get("quantized_ann")
        ann_correct = quantized["correct"] if quantized else run["ann_correct"]
        ann_text = f"{100.0 * ann_correct / run['images']:.2f} %" + (" (quantized)" if quantized else "")
        rows.append((
            Path(run["model"]).stem, run["threshold_method"], run["timesteps"],
            100.0 * run["correct"][-1] / run["images"], ann_text,
            energy["snn_uj_per_image"], energy["ann_uj_per_image"], energy["ann_over_snn"],
            run["synops_per_image"] / 1e6, run["images"],
        ))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", action="append", default=[], help="keep only this threshold method")
    parser.add_argument("runs", nargs="+", help="sweep JSON-lines files")
    args = parser.parse_args(argv)
    rows = [row for path in args.runs for row in rows_of(path, set(args.method))]
    if not rows:
        sys.exit(f"no sweep line of the methods {', '.join(args.method)} in {', '.join(args.runs)}")
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    print("| network | method | T | SNN accuracy | ANN accuracy | SNN energy (µJ/image) | ANN energy (µJ/image) | ANN / SNN | SOPs (M/image) | images |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for net, method, t, acc, ann, snn_uj, ann_uj, ratio, sops, images in rows:
        print(f"| {net} | {method} | {t} | {acc:.2f} % | {ann} | {snn_uj:.1f} | {ann_uj:.1f} | {ratio:.2f}× | {sops:.1f} | {images} |")


if __name__ == "__main__":
    main()
