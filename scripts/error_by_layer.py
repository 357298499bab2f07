#!/usr/bin/env python3
"""Sums up `spikeconv analyze --csv` reports by where a layer sits in the ResNet.

    python3 scripts/error_by_layer.py results/NAME/out/*_T*.csv > summary.md

Every error is relative: a layer's mean |error| divided by its mean threshold, so layers
of different scale compare. For each file (form and T) and threshold method it prints the
means over the first IF layer of every block (`relu1`), over the second (`relu2`: after
the residual sum in the standard form, inside the branch in the restructured one), over
each stage's IF layers (`layer1`, `layer2`, `layer3`), and the last IF layer, then the
five layers of largest relative total error.
"""
import csv
import re
import sys
from collections import defaultdict

METRICS = ("quantization", "deviation", "total")


def relative(row, metric):
    return float(row[metric]) / float(row["threshold"])


def mean(values):
    return sum(values) / len(values) if values else float("nan")


def groups(rows):
    """Named groups of IF layers, in the order they are printed."""
    out = defaultdict(list)
    for row in rows:
        layer = row["layer"]
        for position in ("relu1", "relu2"):
            if layer.endswith("." + position):
                out[position].append(row)
        stage = re.match(r"(layer\d+)\.", layer)
        if stage:
            out[stage.group(1)].append(row)
    out["last IF layer"] = [max(rows, key=lambda r: int(r["depth"]))]
    order = ["relu1", "relu2", *sorted(g for g in out if g.startswith("layer")), "last IF layer"]
    return {g: out[g] for g in order if out[g]}


def main(paths):
    if not paths:
        sys.exit("usage: error_by_layer.py ANALYZE.csv [...]")
    print("Relative errors (mean |error| / mean threshold) per IF layer group; "
          "q = quantization, d = deviation, t = total.\n")
    print("| file | method | group | layers | q | d | t |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    worst = []
    for path in paths:
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as e:
            sys.exit(f"{path}: {e.strerror}")
        missing = {"layer", "depth", "threshold", "threshold_method", *METRICS} - set(rows[0] if rows else ())
        if missing:
            sys.exit(f"{path}: not an analyze CSV (no column {', '.join(sorted(missing))})")
        name = path.rsplit("/", 1)[-1].removesuffix(".csv")
        by_method = defaultdict(list)
        for row in rows:
            by_method[row["threshold_method"]].append(row)
        for method, method_rows in by_method.items():
            for group, members in groups(method_rows).items():
                cells = " | ".join(f"{mean([relative(r, m) for r in members]):.4f}" for m in METRICS)
                print(f"| {name} | `{method}` | {group} | {len(members)} | {cells} |")
            top = sorted(method_rows, key=lambda r: relative(r, "total"), reverse=True)[:5]
            worst.append((name, method, top))
    print("\nLayers of largest relative total error:\n")
    print("| file | method | layers (relative total) |")
    print("| --- | --- | --- |")
    for name, method, top in worst:
        listed = ", ".join(f"{r['layer']} ({relative(r, 'total'):.3f})" for r in top)
        print(f"| {name} | `{method}` | {listed} |")


if __name__ == "__main__":
    main(sys.argv[1:])
