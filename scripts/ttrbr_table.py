#!/usr/bin/env python3
"""Tables of the full-test-set TTRBR experiments (scripts/ttrbr-table.sh), stdlib only.

    python3 scripts/ttrbr_table.py results/table-resnet20-standard/out [--spikeconv BIN]

reads the parts ``T<T>-*.jsonl`` (``sweep --json``) and ``T<T>-*.predictions.csv`` of one
experiment and writes into the same folder ``table.csv`` (one row per T and network: correct,
accuracy, and the exact McNemar comparison with the baseline on the same images, from
``spikeconv paired --json``), ``table.md`` (methods × T) and ``curves-T<T>.svg`` (accuracy
against timestep, ``spikeconv plot``).

    python3 scripts/ttrbr_table.py --combine DIR [DIR ...]

prints one markdown table of several experiments' ``table.csv`` (the TTRBR table of
docs/RESULTS.md): one row per experiment and method, one column per T.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

PART = re.compile(r"^T(\d+)-([a-z]+)\.jsonl$")


def network_name(run: dict) -> str:
    """A sweep line's method name as the table shows it (the T it was tuned for is the column)."""
    return run["threshold_method"]


def column_name(name: str) -> str:
    """A predictions column name without its ``(T=..)`` tuning note."""
    return re.sub(r" \(T=\d+\)$", "", name)


def read_parts(out: Path) -> dict[int, list[tuple[Path, list[dict]]]]:
    parts: dict[int, list[tuple[Path, list[dict]]]] = {}
    for path in sorted(out.iterdir()):
        m = PART.match(path.name)
        if not m:
            continue
        runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        parts.setdefault(int(m.group(1)), []).append((path, runs))
    return parts


def paired(spikeconv: str, files: list[Path]) -> list[dict]:
    result = subprocess.run([spikeconv, "paired", "--json", *map(str, files)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"spikeconv paired {' '.join(map(str, files))}: {result.stderr.strip()}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def p_text(p: float) -> str:
    """Three decimals, else one significant digit; below what f64 holds, a bound."""
    if p == 0.0:
        return "< 1e-300"
    return f"{p:.3f}" if p >= 1e-3 else f"{p:.0e}".replace("e-0", "e-")


def summarize(out: Path, spikeconv: str, baseline: str) -> None:
    parts = read_parts(out)
    if not parts:
        raise SystemExit(f"{out}: no T<T>-*.jsonl parts")
    rows = []
    for t in sorted(parts):
        runs = [(path, run) for path, lines in parts[t] for run in lines]
        predictions = [path.with_name(path.name.replace(".jsonl", ".predictions.csv")) for path, _ in parts[t]]
        pairs = paired(spikeconv, [p for p in predictions if p.exists()])
        for path, run in runs:
            name = network_name(run)
            if len(run["correct"]) != t:
                raise SystemExit(f"{path}: {name} simulated {len(run['correct'])} timesteps, expected {t}")
            vs = next(
                (p for p in pairs if column_name(p["a"]) == baseline and column_name(p["b"]) == name),
                None,
            )
            rows.append({
                "timesteps": t,
                "network": name,
                "correct": run["correct"][-1],
                "images": run["images"],
                "accuracy": run["correct"][-1] / run["images"],
                "ann_correct": run["ann_correct"],
                "only_network_right": vs["only_b_right"] if vs else "",
                "only_baseline_right": vs["only_a_right"] if vs else "",
                "p_vs_baseline": vs["p_value"] if vs else "",
                "constant_current_correct": run.get("constant_current_correct", ""),
                "backend": run.get("backend", ""),
                "device": run.get("adapter", ""),
                "part": path.name,
            })
    with open(out / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "table.md").write_text(markdown(rows, baseline))
    for t in sorted(parts):
        files = [str(path) for path, _ in parts[t]]
        result = subprocess.run(
            [spikeconv, "plot", "--out", str(out / f"curves-T{t}.svg"), "--title", f"tuned for T = {t}", *files],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"spikeconv plot: {result.stderr.strip()}")
    print((out / "table.md").read_text(), end="")


def ordered(rows: list[dict], baseline: str) -> list[str]:
    """Method names: the baseline and its corrected form, the tuned methods, then any others
    (each with the baseline's ``+signed`` suffix where it has one)."""
    suffix = "+signed" if baseline.endswith("+signed") else ""
    base = baseline.removesuffix(suffix) if suffix else baseline
    first = [f"{n}{suffix}" for n in (base, f"{base}+bias", "ttrbr", "channel-ttrbr", "channel-ttrbr+bias",
                                        f"channel-ttrbr:{base}+bias")]
    names = list(dict.fromkeys(r["network"] for r in rows))
    return [n for n in first if n in names] + [n for n in names if n not in first]


def method_table(names: list[str], ts: list[int], cell) -> list[str]:
    """Markdown rows of a method × T table; ``cell(name, t)`` gives a cell's text ("" for none)."""
    lines = ["| method | " + " | ".join(f"T = {t}" for t in ts) + " |", "| --- |" + " ---: |" * len(ts)]
    for name in names:
        cells = [cell(name, t) for t in ts]
        if any(cells):
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return lines


def markdown(rows: list[dict], baseline: str) -> str:
    ts = sorted({r["timesteps"] for r in rows})
    names = ordered(rows, baseline)
    images = {r["images"] for r in rows}
    ann = {r["ann_correct"] for r in rows}

    def find(name: str, t: int, among: list[dict]) -> dict | None:
        return next((r for r in among if r["network"] == name and r["timesteps"] == t), None)

    def accuracy(name: str, t: int) -> str:
        r = find(name, t, rows)
        if r is None:
            return ""
        text = f"{r['correct']} ({100 * r['accuracy']:.2f} %)"
        if r["p_vs_baseline"] == "" or name == baseline:
            return text
        p = p_text(r["p_vs_baseline"])
        return (f"{text} [{r['only_network_right']} / {r['only_baseline_right']}, "
                f"p {p if p.startswith('<') else '= ' + p}]")

    twins = [r for r in rows if r.get("constant_current_correct", "") != ""]

    def twin(name: str, t: int) -> str:
        r = find(name, t, twins)
        if r is None:
            return ""
        pts = lambda c: 100 * int(c) / r["images"]
        correct = r["constant_current_correct"]
        return (f"{correct} ({pts(correct):.2f} %; quantization {pts(r['ann_correct']) - pts(correct):.2f}, "
                f"deviation {pts(correct) - pts(r['correct']):.2f})")

    lines = [
        f"Correct of {'/'.join(map(str, sorted(images)))} test images after T steps, every network tuned for its T; "
        f"ANN {'/'.join(map(str, sorted(ann)))}. In brackets: images only this network / only {baseline} gets "
        f"right, exact McNemar p.",
        "",
        *method_table(names, ts, accuracy),
    ]
    if twins:
        lines += [
            "",
            "Constant-current twins (`sweep --constant-currents`: every IF layer fed its mean current, "
            "quantization error only), correct after T steps, and the loss from the ANN split into what "
            "quantization costs (ANN − twin) and what currents varying over time cost (twin − SNN), in points; "
            "parts run before the option existed have none.",
            "",
            *method_table(names, ts, twin),
        ]
    return "\n".join(lines) + "\n"


def combine(dirs: list[Path]) -> None:
    """One row per experiment and method, accuracy (%) per T, the ANN first."""
    tables = []
    for d in dirs:
        path = d / "table.csv"
        if not path.exists():
            raise SystemExit(f"{path}: missing; run the experiment (or this script on it) first")
        tables.append((d, list(csv.DictReader(open(path)))))
    ts = sorted({int(r["timesteps"]) for _, rows in tables for r in rows})
    print("| experiment | method | " + " | ".join(f"T = {t}" for t in ts) + " |")
    print("| --- | --- |" + " ---: |" * len(ts))
    for d, rows in tables:
        name = d.parent.name if d.name == "out" else d.name
        ann = {(r["ann_correct"], r["images"]) for r in rows}
        print(f"| `{name}` | ANN | " + " | ".join(
            "/".join(f"{100 * int(c) / int(n):.2f}" for c, n in sorted(ann)) for _ in ts) + " |")
        for method in ordered(rows, "channel-percentile:99.9"):
            cells = []
            for t in ts:
                r = next((r for r in rows if r["network"] == method and int(r["timesteps"]) == t), None)
                if r is None:
                    cells.append("")
                    continue
                mark = ""
                if r["p_vs_baseline"] not in ("", None):
                    better = int(r["only_network_right"]) > int(r["only_baseline_right"])
                    if float(r["p_vs_baseline"]) < 0.05:
                        mark = " ▲" if better else " ▼"
                cells.append(f"{100 * float(r['accuracy']):.2f}{mark}")
            print(f"| | `{method}` | " + " | ".join(cells) + " |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", type=Path)
    p.add_argument("--combine", action="store_true", help="print one table of several experiments' table.csv")
    p.add_argument("--spikeconv", default="target/release/spikeconv")
    p.add_argument("--baseline", default="channel-percentile:99.9")
    args = p.parse_args(argv)
    if args.combine:
        combine(args.dirs)
    else:
        for d in args.dirs:
            summarize(d, args.spikeconv, args.baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
