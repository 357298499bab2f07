"""Converts a PyTorch CIFAR network checkpoint (.pt / .th / .pth) to safetensors with the
``__metadata__`` spikeconv reads.

Three families, told apart by their tensor names (or named by ``--arch``, which must then
agree with the tensors):
- He et al.'s CIFAR ResNets (``resnet``: 16/32/64 channels, ``resnet_cifar.py``), metadata
  ``shortcut`` and ``block`` as before;
- VGG 11/13/16/19 (``features.N.*`` tensors, ``vgg_cifar.py``), metadata ``arch``
  (``vgg16``, ...) and ``pool`` (``--pool``, default ``max``: the tensors cannot say);
- ResNet-18/34 (a ``layer4`` or a 64-wide stem, ``resnet_wide.py``; CIFAR or torchvision
  names and stems), metadata ``arch`` (``resnet18``, ``resnet34``) and, for torchvision's
  ImageNet stem (7x7 conv, then a 3x3 pool), ``pool``.
Every file gets ``num_classes``, ``normalize_mean`` / ``normalize_std``, ``source`` and
``license``. The tensors are loaded into the network (every name and shape must fit)
before anything is written.

Accepts a bare ``state_dict`` or a dict holding one under ``state_dict``, ``net`` or
``model`` (akamaster's ``.th`` files, most training scripts), with or without the
``module.`` prefix of ``DataParallel``. Tensors are written as float32 under their
PyTorch names without the prefix; ``num_batches_tracked`` counters are dropped. The file
is read with ``torch.load(weights_only=True)``: no code in it runs.

    python python/export_safetensors.py resnet20-12fca82f.th resnet20.safetensors \\
        --normalize imagenet --block standard --source "akamaster resnet20-12fca82f.th" \\
        --license "BSD-2-Clause"
    python python/export_safetensors.py vgg16_bn.pt vgg16.safetensors --arch vgg16 --pool max \\
        --normalize cifar10 --source "..." --license "..."
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
import resnet_wide  # noqa: E402
import vgg_cifar  # noqa: E402

PRESETS = {
    # Same values as spikeconv's --normalize presets.
    "cifar10": ("0.4914,0.4822,0.4465", "0.2470,0.2435,0.2616"),
    "imagenet": ("0.485,0.456,0.406", "0.229,0.224,0.225"),
}

# --arch choices: "resnet" is He's CIFAR ResNet family (any depth 6n + 2).
ARCHS = ("resnet", *vgg_cifar.CONFIGS, "resnet18", "resnet34")


def identify(tensors: dict[str, torch.Tensor]) -> tuple[str, dict]:
    """The family (``vgg``, ``resnet_wide`` or ``resnet``) and architecture the tensors describe."""
    if any(k.startswith("features.") for k in tensors):
        info = vgg_cifar.infer_vgg(tensors)
        if info["name"] is None:
            raise ValueError(f"features.*: configuration {info['config']} is none of {', '.join(vgg_cifar.CONFIGS)}")
        return "vgg", {**info, "arch": info["name"]}
    if resnet_wide.is_resnet_wide(tensors):
        info = resnet_wide.infer_resnet_wide(tensors)
        return "resnet_wide", {**info, "arch": f"resnet{info['depth']}"}
    return "resnet", {**resnet_cifar.infer_architecture(tensors), "arch": "resnet"}


def has_pool(family: str, info: dict) -> bool:
    """Whether the network has pooling layers whose kind (max or average) the tensors cannot show."""
    return family == "vgg" or (family == "resnet_wide" and info["stem"] == "imagenet")


def check_fits(tensors: dict[str, torch.Tensor], family: str, pool: str | None, block: str = "standard"):
    """Builds the network and loads ``tensors`` into it strictly; returns the model (raises ``ValueError``)."""
    if family == "vgg":
        return vgg_cifar.from_state_dict(tensors, pool or "max")
    if family == "resnet_wide":
        return resnet_wide.from_state_dict(tensors, pool or "max")
    return resnet_cifar.from_state_dict(tensors, block)


def family_metadata(family: str, info: dict, pool: str | None, mean: str | None, std: str | None,
                    source: str, license_text: str | None, block: str = "standard") -> dict[str, str]:
    """The ``__metadata__`` spikeconv reads for a network of ``family`` (see the module docs)."""
    metadata = {"num_classes": str(info["num_classes"])}
    if family == "resnet":
        metadata.update({"shortcut": info["shortcut"], "block": block})
    else:
        metadata["arch"] = info["arch"]
        if has_pool(family, info):
            metadata["pool"] = pool or "max"
    metadata["source"] = source
    if mean:
        metadata["normalize_mean"] = mean
    if std:
        metadata["normalize_std"] = std
    if license_text:
        metadata["license"] = license_text
    return metadata


def describe(family: str, info: dict) -> str:
    if family == "vgg":
        return (f"{info['arch'].upper()} ({'with' if info['batch_norm'] else 'without'} BatchNorm, "
                f"{info['classifier']} linear layer(s))")
    if family == "resnet_wide":
        return f"ResNet-{info['depth']} ({info['naming']} names, {info['stem']} stem)"
    return f"ResNet-{resnet_cifar.depth_of(info['blocks_per_stage'], len(info['widths']))}"


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
    p.add_argument("--arch", choices=ARCHS,
                   help="the network the tensors must form (default: inferred from their names and shapes)")
    p.add_argument("--pool", choices=list(vgg_cifar.POOLS),
                   help="kind of the pooling layers of a VGG or an ImageNet-stem ResNet (default max)")
    p.add_argument("--shortcut", choices=["A", "B"], help="He ResNets: default B if projection tensors exist, else A")
    p.add_argument("--block", choices=list(resnet_cifar.BLOCK_FORMS), default=None,
                   help="He ResNets: block form (default standard)")
    p.add_argument("--source", help="where the weights come from (recorded as metadata)")
    p.add_argument("--license", help="license of the weights (recorded as metadata)")
    args = p.parse_args(argv)

    loaded = torch.load(args.input, map_location="cpu", weights_only=True)
    state = extract_state_dict(loaded)
    tensors = {k: v.detach().float().contiguous() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    try:
        family, arch = identify(tensors)
    except ValueError as e:
        p.error(f"{args.input}: {e}")
    if args.arch is not None and args.arch != arch["arch"]:
        p.error(f"--arch {args.arch} contradicts the tensors ({describe(family, arch)})")
    if family != "resnet" and (args.block not in (None, "standard") or args.shortcut is not None):
        p.error(f"--block and --shortcut are for He's CIFAR ResNets; this is a {describe(family, arch)}")
    if args.pool is not None and not has_pool(family, arch):
        p.error(f"--pool: a {describe(family, arch)} has no pooling layer")
    block = args.block or "standard"
    pool = (args.pool or "max") if has_pool(family, arch) else None
    # Check the tensors form the network (same names and shapes) before writing anything.
    try:
        check_fits(tensors, family, pool, block)
    except ValueError as e:
        p.error(f"{args.input}: {e}")

    mean, std = PRESETS.get(args.normalize, (None, None))
    mean, std = args.mean or mean, args.std or std
    if args.num_classes is not None and args.num_classes != arch["num_classes"]:
        p.error(f"--num-classes {args.num_classes} contradicts the final layer ({arch['num_classes']} outputs)")
    if args.shortcut is not None and args.shortcut != arch["shortcut"]:
        p.error(f"--shortcut {args.shortcut} contradicts the tensors (option {arch['shortcut']})")
    source = args.source or f"exported from {args.input.name} by spikeconv python/export_safetensors.py"
    metadata = family_metadata(family, arch, pool, mean, std, source, args.license, block)
    if not (mean and std):
        print("warning: no --mean/--std/--normalize: spikeconv will ask for them at load time", file=sys.stderr)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, args.output)
    print(f"wrote {args.output}: {describe(family, arch)}, {len(tensors)} tensors, metadata {metadata}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
