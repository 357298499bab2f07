#!/usr/bin/env python3
"""SpikingJelly peer benchmark: the same CIFAR ResNet checkpoint converted by SpikingJelly's
ann2snn ``Converter`` and simulated on the CPU, timed in image-timesteps per second.

Steps:

1. Load the safetensors checkpoint into ``python/resnet_cifar.py``'s model (normalization
   from the file's metadata, as spikeconv reads it) and build a *converter-friendly twin*
   that shares its tensors: SpikingJelly's FX converter only turns ``nn.ReLU`` *modules*
   into IF neurons and its step-mode adapter rejects ``F.pad`` / ``F.relu`` /
   ``F.adaptive_avg_pool2d``, so the twin uses one ``nn.ReLU`` per activation, writes the
   option-A shortcut as slicing + ``torch.cat`` with zero channels, and pools with modules.
   The twin's logits are checked against the original model's before anything is timed.
2. Convert it with ``Converter(RateCodingRecipe(dataloader, mode="99.9%"))``: Conv-BN
   fusion, then every ReLU becomes ``VoltageScaler(1/s) -> IFNode(v_threshold=1,
   v_reset=None) -> VoltageScaler(s)`` where ``s`` is the layer's 99.9th percentile
   activation on the calibration images (one calibration batch of ``--n-calib`` images by
   default, so ``s`` is the exact percentile over all of them, not a momentum average).
   ``v_reset=None`` is reset by subtraction; the script asserts it on every IF node.
3. Time the simulation of the first ``--limit`` test images for ``--timesteps`` steps at
   each ``--batch`` size, after one untimed warm-up batch, under ``torch.no_grad()`` with
   ``torch.set_num_threads(--threads)``, ``functional.reset_net`` before every batch, in
   SpikingJelly's multi-step mode (``step_mode='m'``: the whole ``[T, B, ...]`` sequence
   per call, stateless layers see a ``T*B`` batch) and/or single-step mode (a Python loop
   over T). The prediction is the argmax of the output summed over the T steps.

stdout: one JSON line per (step mode, batch size) (``"kind": "snn"``), one per batch size
of the ANN with ``--ann`` (``"kind": "ann"``), and last the fastest SNN line again with
``"kind": "best"``. Progress goes to stderr. Run from anywhere, e.g. (repository root)::

    /work/peer-venv/bin/python benches/peer/spikingjelly_peer.py \\
        --model ../shared/data/weights/resnet20_cifar10_akamaster.safetensors \\
        --timesteps 32 --limit 256 --batch 16,32,64 --ann
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from safetensors import safe_open  # noqa: E402

import cifar10  # noqa: E402
import resnet_cifar  # noqa: E402

import spikingjelly  # noqa: E402
from spikingjelly.activation_based import functional, neuron  # noqa: E402
from spikingjelly.activation_based.ann2snn import Converter  # noqa: E402
from spikingjelly.activation_based.ann2snn.modules import VoltageHook  # noqa: E402

try:  # SpikingJelly >= 2.0: the converter takes a recipe
    from spikingjelly.activation_based.ann2snn import RateCodingRecipe  # noqa: E402
except ImportError:  # 0.0.0.0.14: Converter(dataloader, mode=...)
    RateCodingRecipe = None

DATA = REPO.parent / "shared" / "data"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="safetensors checkpoint (standard/restructured/preact CIFAR ResNet)")
    p.add_argument("--name", help="model name in the JSON (default: the file name without extension)")
    p.add_argument("--calib", type=Path, default=DATA / "cifar10" / "data_batch_1.bin", help="calibration batch (its first --n-calib images)")
    p.add_argument("--data", type=Path, default=DATA / "cifar10" / "test_batch.bin", help="test batch (its first --limit images are timed)")
    p.add_argument("--n-calib", type=int, default=512, help="calibration images (default 512)")
    p.add_argument("--calib-batch", type=int, default=512,
                   help="calibration batch size (default 512; with more images than this, SpikingJelly averages per-batch percentiles with momentum 0.1; torch.quantile takes at most 16M values, i.e. about 1000 images in the first stage)")
    p.add_argument("--percentile", type=float, default=99.9, help="threshold percentile (default 99.9: mode '99.9%%')")
    p.add_argument("--stat", choices=("all", "positive"), default="all",
                   help="'all' (default): SpikingJelly's statistic, the percentile over all post-ReLU activations, zeros included; "
                        "'positive': over the positive activations only, as spikeconv's percentile:P")
    p.add_argument("--v-init", type=float, default=0.0,
                   help="initial membrane as a fraction of the threshold, in [0, 1]: 0 (default, SpikingJelly's IFNode) or e.g. 0.5 (spikeconv's default)")
    p.add_argument("--timesteps", "-T", type=int, default=32)
    p.add_argument("--limit", type=int, default=256, help="test images timed (default 256)")
    p.add_argument("--batch", default="64", help="comma-separated batch sizes (default 64)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--step-mode", choices=("m", "s", "both"), default="both",
                   help="SpikingJelly execution path: multi-step, single-step, or both (default)")
    p.add_argument("--ann", action="store_true", help="also time the ANN forward (BN folded) at the same batch sizes")
    p.add_argument("--ann-passes", type=int, default=3,
                   help="passes over the test images per ANN batch size, the fastest reported (default 3: one pass is short and easily disturbed)")
    args = p.parse_args(argv)
    args.batches = [int(b) for b in str(args.batch).split(",") if b.strip()]
    if not args.batches or min(args.batches) < 1:
        p.error("--batch needs positive sizes")
    if not 0.0 <= args.v_init <= 1.0:
        p.error("--v-init must be in [0, 1]")
    if args.name is None:
        args.name = args.model.name.split(".")[0]
    return args


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Converter-friendly twin of resnet_cifar.ResNetCifar (shares the original's parameters)
# ---------------------------------------------------------------------------------------


class TwinShortcutA(nn.Module):
    """Option A as slicing and concatenation: SpikingJelly's step-mode adapter accepts
    batch-preserving ``getitem``, ``operator.mul`` and ``torch.cat`` but not ``F.pad``."""

    def __init__(self, original: resnet_cifar.ShortcutA, in_planes: int):
        super().__init__()
        self.stride = original.stride
        self.pad_before = original.pad_before
        self.pad_after = original.pad_after
        if max(self.pad_before, self.pad_after) > in_planes:
            raise ValueError("option-A padding wider than the input: not supported by the twin")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        parts = []
        if self.pad_before:
            parts.append(x[:, : self.pad_before] * 0.0)
        parts.append(x)
        if self.pad_after:
            parts.append(x[:, : self.pad_after] * 0.0)
        return torch.cat(parts, dim=1)


def twin_shortcut(original: nn.Module, in_planes: int) -> nn.Module:
    if isinstance(original, resnet_cifar.ShortcutA):
        return TwinShortcutA(original, in_planes)
    return original  # nn.Identity, or nn.Sequential(conv[, bn]) for option B


class TwinBlock(nn.Module):
    def __init__(self, b: resnet_cifar.BasicBlock):
        super().__init__()
        self.block = b.block
        self.conv1, self.bn1, self.conv2, self.bn2 = b.conv1, b.bn1, b.conv2, b.bn2
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()
        self.shortcut = twin_shortcut(b.shortcut, b.conv1.in_channels)

    def forward(self, x):
        branch = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        if self.block == "standard":
            return self.relu2(branch + self.shortcut(x))
        return self.shortcut(x) + self.relu2(branch)


class TwinPreActBlock(nn.Module):
    def __init__(self, b: resnet_cifar.PreActBlock):
        super().__init__()
        self.bn1, self.conv1, self.bn2, self.conv2 = b.bn1, b.conv1, b.bn2, b.conv2
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()
        self.projects = b.projects
        self.shortcut = twin_shortcut(b.shortcut, b.conv1.in_channels)

    def forward(self, x):
        activated = self.relu1(self.bn1(x))
        branch = self.conv2(self.relu2(self.bn2(self.conv1(activated))))
        return branch + self.shortcut(activated if self.projects else x)


class TwinResNet(nn.Module):
    def __init__(self, m: resnet_cifar.ResNetCifar):
        super().__init__()
        self.preact = m.block == "preact"
        self.conv1 = m.conv1
        if not self.preact:
            self.bn1 = m.bn1
            self.relu = nn.ReLU()
        stages = []
        for s in range(m.num_stages):
            blocks = getattr(m, f"layer{s + 1}")
            stages.append(nn.Sequential(*[TwinPreActBlock(b) if self.preact else TwinBlock(b) for b in blocks]))
        self.layers = nn.Sequential(*stages)
        if self.preact:
            self.bn = m.bn
            self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.linear = m.linear

    def forward(self, x):
        x = self.conv1(x)
        if not self.preact:
            x = self.relu(self.bn1(x))
        x = self.layers(x)
        if self.preact:
            x = self.relu(self.bn(x))
        return self.linear(self.flatten(self.pool(x)))


# ---------------------------------------------------------------------------------------
# Thresholds: SpikingJelly's statistic, or (--stat positive) spikeconv's
# ---------------------------------------------------------------------------------------


class PositivePercentileHook(VoltageHook):
    """VoltageHook whose percentile is taken over the positive activations only."""

    def forward(self, x):
        if not self.training:
            return x
        values = x.detach().flatten()
        values = values[values > 0]
        s_t = torch.quantile(values, float(self.mode[:-1]) / 100.0) if values.numel() else x.new_tensor(1.0)
        if self.num_batches_tracked == 0:
            self.scale = s_t
        else:
            self.scale = (1 - self.momentum) * self.scale + self.momentum * s_t
        self.num_batches_tracked += x.shape[0]
        return x


def make_converter(calib_batches, mode: str, stat: str, v_init: float):
    if RateCodingRecipe is None:
        if stat != "all" or v_init != 0.0:
            raise SystemExit("--stat positive / --v-init need SpikingJelly >= 2.0 (RateCodingRecipe)")
        return Converter(calib_batches, mode=mode)  # old API; its replace_by_ifnode uses IFNode(v_reset=None)

    factory = None
    if v_init != 0.0:
        # The stock neuron (IFNode, threshold 1 after the recipe's input scaler, reset by
        # subtraction) with its membrane reset value moved from 0 to v_init: the same
        # kernels as the default, unlike neuron.HalfThresholdIFNode (a slower generic path).
        def factory(scale):
            node = neuron.IFNode(v_reset=None)
            node.set_reset_value("v", float(v_init))
            node.v = float(v_init)
            return node

    class Recipe(RateCodingRecipe):
        def insert_observers(self, converter, fx_model):
            fx_model = super().insert_observers(converter, fx_model)
            if stat == "positive":
                for m in fx_model.modules():
                    if type(m) is VoltageHook:
                        m.__class__ = PositivePercentileHook
            return fx_model

    return Converter(Recipe(calib_batches, mode=mode, neuron_factory=factory))


def check_soft_reset(snn: nn.Module) -> int:
    nodes = [m for m in snn.modules() if isinstance(m, neuron.BaseNode)]
    if not nodes:
        raise SystemExit("the converted network has no spiking neurons")
    for m in nodes:
        if m.v_reset is not None:
            raise SystemExit(f"{type(m).__name__} with v_reset={m.v_reset}: hard reset, expected reset by subtraction")
    return len(nodes)


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------


def run_snn(snn: nn.Module, x: torch.Tensor, timesteps: int, step_mode: str) -> torch.Tensor:
    """Summed output over ``timesteps`` steps for one batch (network reset first)."""
    functional.reset_net(snn)
    if step_mode == "m":
        return snn(x.unsqueeze(0).expand(timesteps, *x.shape)).sum(0)
    out = snn(x)
    for _ in range(timesteps - 1):
        out = out + snn(x)
    return out


def time_batches(fn, x: torch.Tensor, y: torch.Tensor, batch: int, passes: int = 1) -> tuple[float, int]:
    """Seconds for one pass over ``x`` in batches of ``batch`` (the fastest of ``passes``),
    after one untimed warm-up batch, and the correct predictions."""
    fn(x[:batch])  # warm-up (first call allocates, oneDNN primitive / dispatch caches)
    best = math.inf
    for _ in range(passes):
        correct = 0
        start = time.perf_counter()
        for i in range(0, x.shape[0], batch):
            out = fn(x[i : i + batch])
            correct += int((out.argmax(1) == y[i : i + batch]).sum())
        best = min(best, time.perf_counter() - start)
    return best, correct


def fold_bn(model: nn.Module) -> tuple[nn.Module, bool]:
    try:
        from torch.fx.experimental.optimization import fuse

        return fuse(model), True
    except Exception as e:  # noqa: BLE001 (timing the unfolded model is still meaningful)
        log(f"BN folding failed ({e}); timing the ANN with BatchNorm layers")
        return model, False


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    common = {
        "tool": "spikingjelly",
        "spikingjelly_version": getattr(spikingjelly, "__version__", None) or _dist_version("spikingjelly"),
        "torch_version": torch.__version__,
        "model": args.name,
        "threads": args.threads,
    }

    with safe_open(str(args.model), "pt") as f:
        metadata = dict(f.metadata() or {})
        state = {k: f.get_tensor(k) for k in f.keys()}
    block = metadata.get("block", "standard")
    mean = cifar10.parse_triple(metadata["normalize_mean"])
    std = cifar10.parse_triple(metadata["normalize_std"])
    ann = resnet_cifar.from_state_dict(state, block).eval()
    twin = TwinResNet(ann).eval()

    calib_x, _ = cifar10.read_batches([args.calib], args.n_calib)
    calib_x = cifar10.normalize(calib_x, mean, std)
    test_x, test_y = cifar10.read_batches([args.data], args.limit)
    test_x = cifar10.normalize(test_x, mean, std)
    n = test_x.shape[0]

    with torch.no_grad():
        probe = test_x[:16]
        diff = (ann(probe) - twin(probe)).abs().max().item()
        if not diff < 1e-3:
            raise SystemExit(f"converter twin differs from resnet_cifar's model by {diff}")
        ann_correct = int((ann(test_x).argmax(1) == test_y).sum())
    log(f"{args.name}: {block} blocks, ANN {ann_correct}/{n} on the timed test images; twin matches (max |diff| {diff:.2e})")

    mode = f"{args.percentile:g}%"
    calib_batches = [(calib_x[i : i + args.calib_batch], None) for i in range(0, calib_x.shape[0], args.calib_batch)]
    start = time.perf_counter()
    snn = make_converter(calib_batches, mode, args.stat, args.v_init).convert(twin).eval()
    convert_s = time.perf_counter() - start
    if_nodes = check_soft_reset(snn)
    thresholds = [float(m.scale) for name, m in snn.named_modules() if name.endswith("scaler1")]
    log(f"converted in {convert_s:.1f} s: {if_nodes} IF layers (reset by subtraction), thresholds "
        + ", ".join(f"{t:.3g}" for t in thresholds[:6]) + (" ..." if len(thresholds) > 6 else ""))
    conversion = {
        "mode": mode,
        "statistic": "percentile over all activations (SpikingJelly)" if args.stat == "all" else "percentile over positive activations (spikeconv)",
        "n_calib": calib_x.shape[0],
        "calib_batch": args.calib_batch,
        "v_init": args.v_init,
        "reset": "subtraction",
        "if_layers": if_nodes,
        "ann_correct": ann_correct,
    }

    modes = ["m", "s"] if args.step_mode == "both" else [args.step_mode]
    records = []
    with torch.no_grad():
        if args.ann:
            folded, bn_folded = fold_bn(ann)
            for batch in args.batches:
                seconds, correct = time_batches(folded, test_x, test_y, batch, passes=args.ann_passes)
                rec = {**common, "tool": "pytorch", "kind": "ann", "batch": batch, "images": n, "seconds": round(seconds, 4),
                       "images_per_second": round(n / seconds, 2), "accuracy": correct / n, "bn_folded": bn_folded,
                       "passes": args.ann_passes}
                print(json.dumps(rec), flush=True)
        for step_mode in modes:
            try:
                functional.set_step_mode(snn, step_mode)
            except Exception as e:  # noqa: BLE001
                log(f"step_mode '{step_mode}' not supported by the converted model: {e}")
                continue
            for batch in args.batches:
                fn = lambda xb: run_snn(snn, xb, args.timesteps, step_mode)  # noqa: E731
                try:
                    seconds, correct = time_batches(fn, test_x, test_y, batch)
                except Exception as e:  # noqa: BLE001
                    log(f"step_mode '{step_mode}' batch {batch} failed: {type(e).__name__}: {e}")
                    break
                rec = {**common, "kind": "snn", "step_mode": step_mode, "timesteps": args.timesteps, "batch": batch,
                       "images": n, "seconds": round(seconds, 4),
                       "image_timesteps_per_second": round(n * args.timesteps / seconds, 2),
                       "accuracy_at_T": correct / n, **conversion}
                records.append(rec)
                print(json.dumps(rec), flush=True)
                log(f"step_mode {step_mode} batch {batch}: {rec['image_timesteps_per_second']:.0f} img-ts/s, "
                    f"accuracy at T={args.timesteps}: {correct}/{n}")
    if not records:
        log("no SNN configuration ran")
        return 1
    best = max(records, key=lambda r: r["image_timesteps_per_second"])
    by_mode = {m: max((r["image_timesteps_per_second"] for r in records if r["step_mode"] == m), default=None) for m in modes}
    print(json.dumps({**best, "kind": "best", "best_per_step_mode": by_mode}), flush=True)
    log(f"best: step_mode {best['step_mode']} batch {best['batch']}: {best['image_timesteps_per_second']:.0f} img-ts/s "
        f"(per mode: {by_mode})")
    return 0


def _dist_version(name: str):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    sys.exit(main())
