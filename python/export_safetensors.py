"""Converts a PyTorch CIFAR ResNet checkpoint (.pt / .th / .pth) to safetensors with the
``__metadata__`` spikeconv reads.

Accepts a bare ``state_dict`` or a dict holding one under ``state_dict``, ``net`` or
``model`` (akamaster's ``.th`` files, most training scripts), with or without the
``module.`` prefix of ``DataParallel``. Tensors are written as float32 under their
PyTorch names without the prefix; ``num_batches_tracked`` counters are dropped. The file
is read with ``torch.load(weights_only=True)``: no code in it runs.

    python python/export_safetensors.py resnet20-12fca82f.th resnet20.safetensors \\
        --normalize imagenet --block standard --source "akamaster resnet20-12fca82f.th" \\
        --license "BSD-2-Clause"
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import resnet_cifar  # noqa: E402

PRESETS = {
    # Same values as spikeconv's --normalize presets.
    "cifar10": ("0.4914,0.4822,0.4465", "0.2470,0.2435,0.2616"),
    "imagenet": ("0.485,0.456,0.406", "0.229,0.224,0.225"),
}


def triple(text: str) -> str:
    """Validates ``"a,b,c"`` and returns it as given (spikeconv reads this format)."""
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected three comma-separated numbers")
    for part in parts:
        float(part)
    return ",".join(p.strip() for p in parts)


def extract_state_dict(loaded) -> dict[str, torch.Tensor]:
    """The state_dict inside whatever ``torch.load`` returned."""
    if isinstance(loaded, torch.nn.Module):
        loaded = loaded.state_dict()
    if not isinstance(loaded, dict):
        raise ValueError(f"expected a state_dict or a dict holding one, found {type(loaded).__name__}")
    for key in ("state_dict", "net", "model"):
        inner = loaded.get(key)
        if isinstance(inner, torch.nn.Module):
            inner = inner.state_dict()
        if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            return resnet_cifar.strip_module_prefix(inner)
    tensors = {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    if not tensors or len(tensors) != len(loaded):
        raise ValueError(
            f"no state_dict found: top-level keys {sorted(loaded)[:8]} (expected tensors, or state_dict/net/model)"
        )
    return resnet_cifar.strip_module_prefix(tensors)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input", type=Path, help="PyTorch checkpoint (.pt, .th, .pth)")
    p.add_argument("output", type=Path, help="safetensors file to write")
    p.add_argument("--mean", type=triple, help="per-channel mean a,b,c of the training normalization")
    p.add_argument("--std", type=triple, help="per-channel std a,b,c of the training normalization")
    p.add_argument("--normalize", choices=sorted(PRESETS), help="preset for mean and std (explicit values win)")
    p.add_argument("--num-classes", type=int, help="default: the final layer's outputs")
    p.add_argument("--shortcut", choices=["A", "B"], help="default: B if projection tensors exist, else A")
    p.add_argument("--block", choices=list(resnet_cifar.BLOCK_FORMS), default="standard")
    p.add_argument("--source", help="where the weights come from (recorded as metadata)")
    p.add_argument("--license", help="license of the weights (recorded as metadata)")
    args = p.parse_args(argv)

    loaded = torch.load(args.input, map_location="cpu", weights_only=True)
    state = extract_state_dict(loaded)
    tensors = {k: v.detach().float().contiguous() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    arch = resnet_cifar.infer_architecture(tensors)
    # Check the tensors form the network (same names and shapes) before writing anything.
    resnet_cifar.from_state_dict(tensors, args.block)

    mean, std = PRESETS.get(args.normalize, (None, None))
    mean, std = args.mean or mean, args.std or std
    if args.num_classes is not None and args.num_classes != arch["num_classes"]:
        p.error(f"--num-classes {args.num_classes} contradicts the final layer ({arch['num_classes']} outputs)")
    if args.shortcut is not None and args.shortcut != arch["shortcut"]:
        p.error(f"--shortcut {args.shortcut} contradicts the tensors (option {arch['shortcut']})")
    metadata = {
        "num_classes": str(arch["num_classes"]),
        "shortcut": arch["shortcut"],
        "block": args.block,
        "source": args.source or f"exported from {args.input.name} by spikeconv python/export_safetensors.py",
    }
    if mean:
        metadata["normalize_mean"] = mean
    if std:
        metadata["normalize_std"] = std
    if args.license:
        metadata["license"] = args.license
    if not (mean and std):
        print("warning: no --mean/--std/--normalize: spikeconv will ask for them at load time", file=sys.stderr)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, args.output)
    depth = resnet_cifar.depth_of(arch["blocks_per_stage"], len(arch["widths"]))
    print(f"wrote {args.output}: ResNet-{depth}, {len(tensors)} tensors, metadata {metadata}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
