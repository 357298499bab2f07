"""ResNet-18/34 (He et al., 2016) with 64/128/256/512 channels, as CIFAR code and torchvision save them.

Basic blocks ``y = ReLU(BN2(conv2(ReLU(BN1(conv1(x))))) + shortcut(x))``, [2, 2, 2, 2]
(ResNet-18) or [3, 4, 6, 3] (ResNet-34) per stage, stride 2 in the first block of stages
2-4, and a 1x1 conv (stride 2, no bias) + BN projection where the stride or the width
changes. Every conv is bias-free. After the stages: global average pool, flatten, linear.

Two naming schemes over the same network:
- ``cifar`` (kuangliu/pytorch-cifar): ``conv1``, ``bn1``, ``layerK.i.{conv1,bn1,conv2,bn2}``,
  ``layerK.i.shortcut.{0,1}`` (projection conv, BN), ``linear``;
- ``torchvision``: the same with ``downsample.{0,1}`` and ``fc``.

Two stems:
- ``cifar``: 3x3 conv, stride 1, padding 1 + BN + ReLU (32x32 stays 32x32);
- ``imagenet`` (torchvision): 7x7 conv, stride 2, padding 3 + BN + ReLU + 3x3 pool,
  stride 2, padding 1 (32x32 becomes 8x8). The pool is a max-pool, or for ``pool="avg"``
  an average pool that counts the zero padding (PyTorch's ``count_include_pad=True``:
  every window divides by 9).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from vgg_cifar import load_strict

BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
WIDTHS = (64, 128, 256, 512)
NAMINGS = ("cifar", "torchvision")
STEMS = ("cifar", "imagenet")


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, naming: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        projection = None
        if stride != 1 or in_planes != planes:
            projection = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        # The attribute name is the naming scheme's; torchvision stores None when there is none.
        self.shortcut_name = "shortcut" if naming == "cifar" else "downsample"
        if projection is not None or naming == "torchvision":
            setattr(self, self.shortcut_name, projection)
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        projection = getattr(self, self.shortcut_name)
        identity = x if projection is None else projection(x)
        return self.relu(out + identity)


class ResNetWide(nn.Module):
    def __init__(self, blocks: tuple[int, ...], naming: str = "cifar", stem: str = "cifar", pool: str = "max",
                 num_classes: int = 10):
        super().__init__()
        if naming not in NAMINGS:
            raise ValueError(f"naming must be one of {NAMINGS}, got {naming!r}")
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        self.naming, self.stem, self.pool = naming, stem, pool
        if stem == "cifar":
            self.conv1 = nn.Conv2d(3, WIDTHS[0], 3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, WIDTHS[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(WIDTHS[0])
        self.relu = nn.ReLU(inplace=True)
        if stem == "imagenet":
            if pool == "max":
                self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
            elif pool == "avg":
                self.maxpool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True)
            else:
                raise ValueError(f"pool must be max or avg, got {pool!r}")
        in_planes = WIDTHS[0]
        for stage, (count, planes) in enumerate(zip(blocks, WIDTHS)):
            layers = []
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(BasicBlock(in_planes, planes, stride, naming))
                in_planes = planes
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layers))
        head = nn.Linear(in_planes, num_classes)
        self.head_name = "linear" if naming == "cifar" else "fc"
        setattr(self, self.head_name, head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        if self.stem == "imagenet":
            x = self.maxpool(x)
        for stage in range(1, 5):
            x = getattr(self, f"layer{stage}")(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return getattr(self, self.head_name)(x)


def resnet_wide(depth: int, naming: str = "cifar", stem: str = "cifar", num_classes: int = 10,
                pool: str = "max") -> ResNetWide:
    """ResNet-18 or ResNet-34; ``pool`` is the imagenet stem's pool (``max`` or ``avg``)."""
    if depth not in BLOCKS:
        raise ValueError(f"depth must be one of {sorted(BLOCKS)}, got {depth!r}")
    return ResNetWide(BLOCKS[depth], naming, stem, pool, num_classes)


def is_resnet_wide(state: dict[str, torch.Tensor]) -> bool:
    """A four-stage ResNet, or one whose stem is 64 wide (He's CIFAR ResNets have 3 stages, 16 wide)."""
    stem = state.get("conv1.weight")
    return any(k.startswith("layer4.") for k in state) or (stem is not None and stem.shape[0] == WIDTHS[0])


def infer_resnet_wide(state: dict[str, torch.Tensor]) -> dict:
    """``depth`` (18 or 34), ``naming``, ``stem`` and ``num_classes`` of a ResNet-18/34 ``state_dict``."""
    counts = []
    for stage in range(1, 5):
        indices = {int(k.split(".")[1]) for k in state if k.startswith(f"layer{stage}.")}
        if indices != set(range(len(indices))):
            raise ValueError(f"layer{stage}: block indices {sorted(indices)} are not 0..n-1")
        counts.append(len(indices))
    depth = next((d for d, b in BLOCKS.items() if tuple(counts) == b), None)
    if depth is None:
        raise ValueError(f"blocks per stage {counts}: ResNet-18 has {list(BLOCKS[18])}, ResNet-34 {list(BLOCKS[34])}")
    if "fc.weight" in state or any(".downsample." in k for k in state):
        naming = "torchvision"
    else:
        naming = "cifar"
    head = "fc" if naming == "torchvision" else "linear"
    if f"{head}.weight" not in state:
        raise ValueError(f"no {head}.weight: the {naming} naming ends with {head}")
    stem_weight = state.get("conv1.weight")
    if stem_weight is None:
        raise ValueError("no conv1.weight (the stem)")
    kernel = tuple(stem_weight.shape[2:])
    stem = {(3, 3): "cifar", (7, 7): "imagenet"}.get(kernel)
    if stem is None:
        raise ValueError(f"conv1.weight: kernel {kernel}, expected 3x3 (cifar stem) or 7x7 (imagenet stem)")
    return {"depth": depth, "naming": naming, "stem": stem, "num_classes": int(state[f"{head}.weight"].shape[0])}


def from_state_dict(state: dict[str, torch.Tensor], pool: str = "max") -> ResNetWide:
    """Builds the ResNet-18/34 that ``state`` fits and loads it strictly (``num_batches_tracked`` optional)."""
    arch = infer_resnet_wide(state)
    model = resnet_wide(arch["depth"], arch["naming"], arch["stem"], arch["num_classes"], pool)
    load_strict(model, state)
    return model
