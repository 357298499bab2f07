"""Example: a checkpoint converted with two methods, its accuracy after every timestep
plotted with matplotlib, through the spikeconv Python package (`pip install .`).

    python python/plot_sweep.py --data ../shared/data --out sweep.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import spikeconv  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=Path("assets/resnet20_restructured.safetensors"))
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with cifar10/*.bin")
    p.add_argument("--methods", default="channel-percentile:99.9,channel-ttrbr")
    p.add_argument("--timesteps", type=int, default=32)
    p.add_argument("--limit", type=int, default=500)
    p.add_argument("--backend", default="auto")
    p.add_argument("--out", type=Path, default=Path("sweep.png"))
    args = p.parse_args()

    network = spikeconv.load(args.model)
    snns = network.convert(args.data / "cifar10/data_batch_1.bin", args.methods, tune_timesteps=[args.timesteps],
                           backend=args.backend)
    result = spikeconv.sweep(snns, args.timesteps, data=args.data / "cifar10/test_batch.bin", limit=args.limit,
                             backend=args.backend, source=network)
    steps = range(1, args.timesteps + 1)
    for method, accuracy in zip(result["methods"], result["accuracy"]):
        plt.plot(steps, 100 * accuracy, label=method)
    plt.axhline(100 * result["ann_accuracy"], color="gray", linestyle="--", label="ANN")
    plt.xlabel("timestep t")
    plt.ylabel(f"accuracy on {result['images']} test images (%)")
    plt.title(f"{args.model.name} on {result['device']}")
    plt.legend()
    plt.savefig(args.out, dpi=120, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
