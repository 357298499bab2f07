"""VGG 11/13/16/19 for CIFAR with the ``state_dict`` names of the common CIFAR code.

``features`` is an ``nn.Sequential`` of, per configuration entry, a 3x3 conv (padding 1,
with bias) [+ BatchNorm2d] + ReLU, or a 2x2 pool of stride 2 (``M``): max-pooling, or
average pooling for networks trained (or fine-tuned) for a spiking network's average-pool
substitute. Pools and ReLUs hold no tensors but take an index, so the tensor names are
``features.N.*`` exactly as kuangliu/pytorch-cifar writes them (VGG-16 with BatchNorm:
``features.0`` conv, ``features.1`` BN, ``features.6`` pool, ``features.7`` conv, ...).
Five pools take a 32x32 input to 512x1x1, which is flattened into the classifier:
- ``classifier=1``: ``classifier = Linear(512, classes)`` (kuangliu);
- ``classifier=3``: ``Dropout, Linear(512, 512), ReLU, Dropout, Linear(512, 512), ReLU,
  Linear(512, classes)``, tensors ``classifier.1``, ``classifier.4``, ``classifier.6``
  (chengyangfu/pytorch-vgg-cifar10).
kuangliu's trailing ``AvgPool2d(1, 1)`` is the identity on a 1x1 map and is left out (it
came after every named layer, so no name moves). Activations are plain ReLUs.
"""

from __future__ import annotations

import torch
import torch.nn as nn

CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512,
              "M"],
}
POOLS = ("max", "avg")
CLASSIFIERS = (1, 3)


def make_pool(pool: str) -> nn.Module:
    """The 2x2, stride-2 pooling layer of ``pool`` kind (``max`` or ``avg``)."""
    if pool == "max":
        return nn.MaxPool2d(2, 2)
    if pool == "avg":
        return nn.AvgPool2d(2, 2)
    raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")


class VGG(nn.Module):
    def __init__(self, config: list[int | str], batch_norm: bool = True, pool: str = "max", classifier: int = 1,
                 num_classes: int = 10):
        super().__init__()
        if classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must have 1 or 3 linear layers, got {classifier!r}")
        if config.count("M") != 5:
            raise ValueError(f"a CIFAR VGG needs 5 pools (32x32 -> 1x1), this configuration has {config.count('M')}")
        self.config = list(config)
        self.batch_norm = batch_norm
        self.pool = pool
        self.classifier_layers = classifier
        layers: list[nn.Module] = []
        in_channels = 3
        for entry in config:
            if entry == "M":
                layers.append(make_pool(pool))
                continue
            layers.append(nn.Conv2d(in_channels, int(entry), 3, padding=1, bias=True))
            if batch_norm:
                layers.append(nn.BatchNorm2d(int(entry)))
            layers.append(nn.ReLU(inplace=True))
            in_channels = int(entry)
        self.features = nn.Sequential(*layers)
        if classifier == 1:
            self.classifier: nn.Module = nn.Linear(in_channels, num_classes)
        else:
            self.classifier = nn.Sequential(
                nn.Dropout(), nn.Linear(in_channels, 512), nn.ReLU(inplace=True),
                nn.Dropout(), nn.Linear(512, 512), nn.ReLU(inplace=True),
                nn.Linear(512, num_classes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def vgg(name: str, batch_norm: bool = True, pool: str = "max", classifier: int = 1, num_classes: int = 10,
        width: float = 1.0) -> VGG:
    """``vgg("vgg16")``: the named configuration (``vgg11``, ``vgg13``, ``vgg16``, ``vgg19``),
    every convolution's width multiplied by ``width`` (e.g. 0.25 for a quick experiment)."""
    key = name.lower()
    if key not in CONFIGS:
        raise ValueError(f"unknown VGG {name!r}; known: {', '.join(CONFIGS)}")
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")
    config = [c if c == "M" else max(1, round(int(c) * width)) for c in CONFIGS[key]]
    return VGG(config, batch_norm, pool, classifier, num_classes)


def _pattern(config: list[int | str]) -> list[str]:
    """A configuration's layer pattern, widths left out: ``["C", "M", ...]``."""
    return ["M" if c == "M" else "C" for c in config]


def infer_vgg(state: dict[str, torch.Tensor]) -> dict:
    """The configuration a VGG ``state_dict`` was made by, from its tensor names and shapes.

    Returns ``name`` (``vgg16``, ...), ``config``, ``batch_norm``, ``classifier`` (1 or 3)
    and ``num_classes``. Pools hold no tensors: one shows as an index step of 1 between a
    layer group and the next conv; the pools after the last conv are whatever takes the
    count to 5. Raises ``ValueError`` naming the tensor that breaks the expected layout.
    """
    layers: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in state.items():
        if name.startswith("features."):
            index, _, param = name[len("features."):].partition(".")
            if not index.isdigit():
                raise ValueError(f"{name}: expected features.<index>.<parameter>")
            layers.setdefault(int(index), {})[param] = tensor
    if not layers:
        raise ValueError("no features.* tensors: not a VGG state_dict")
    convs = sorted(i for i, params in layers.items() if params.get("weight") is not None and params["weight"].dim() == 4)
    if not convs:
        raise ValueError("features.*: no 4-dimensional conv weight")
    batch_norm = (convs[0] + 1) in layers and "running_mean" in layers[convs[0] + 1]
    step = 3 if batch_norm else 2  # conv [+ BN] + ReLU
    expected_params = {"weight", "bias"}
    config: list[int | str] = []
    index, in_channels = 0, 3
    for conv in convs:
        gap = conv - index
        if gap < 0 or gap > 1:
            raise ValueError(f"features.{conv}.weight: a conv at index {conv} after a layer group ending at "
                             f"{index - 1} (only one pool fits between)")
        if gap == 1:
            config.append("M")
        weight = layers[conv]["weight"]
        if set(layers[conv]) != expected_params:
            raise ValueError(f"features.{conv}: expected a conv with weight and bias, found {sorted(layers[conv])}")
        if tuple(weight.shape[1:]) != (in_channels, 3, 3):
            raise ValueError(f"features.{conv}.weight: shape {tuple(weight.shape)}, expected "
                             f"[{weight.shape[0]}, {in_channels}, 3, 3]")
        if batch_norm:
            bn = layers.get(conv + 1, {})
            if {"weight", "bias", "running_mean", "running_var"} - set(bn):
                raise ValueError(f"features.{conv + 1}: expected a BatchNorm after the conv at {conv}, "
                                 f"found {sorted(bn) or 'nothing'}")
        config.append(int(weight.shape[0]))
        in_channels = int(weight.shape[0])
        index = conv + step
    stray = sorted(i for i in layers if i not in convs and not (batch_norm and i - 1 in convs))
    if stray:
        raise ValueError(f"features.{stray[0]}: tensors {sorted(layers[stray[0]])} where no conv or BatchNorm belongs")
    config += ["M"] * (5 - config.count("M"))
    if "classifier.weight" in state:
        classifier, last = 1, "classifier.weight"
        if state[last].shape[1] != in_channels:
            raise ValueError(f"{last}: shape {tuple(state[last].shape)}, expected [classes, {in_channels}]")
    elif "classifier.6.weight" in state:
        classifier, last = 3, "classifier.6.weight"
        for name, fan_in in (("classifier.1.weight", in_channels), ("classifier.4.weight", 512)):
            if name not in state or tuple(state[name].shape) != (512, fan_in):
                found = tuple(state[name].shape) if name in state else "missing"
                raise ValueError(f"{name}: {found}, expected [512, {fan_in}]")
    else:
        raise ValueError("no classifier.weight (one linear layer) or classifier.6.weight (three)")
    # Named by its pattern of convolutions and pools (any widths: a narrowed VGG-11 is a VGG-11).
    name = next((k for k, v in CONFIGS.items() if _pattern(v) == _pattern(config)), None)
    return {"name": name, "config": config, "batch_norm": batch_norm, "classifier": classifier,
            "num_classes": int(state[last].shape[0])}


def from_state_dict(state: dict[str, torch.Tensor], pool: str = "max") -> VGG:
    """Builds the VGG that ``state`` fits and loads it strictly (``num_batches_tracked`` optional)."""
    arch = infer_vgg(state)
    model = VGG(arch["config"], arch["batch_norm"], pool, arch["classifier"], arch["num_classes"])
    load_strict(model, state)
    return model


def load_strict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """``load_state_dict`` that requires every tensor but ``num_batches_tracked`` (safetensors
    exports drop it) and names the first missing, unexpected or misshapen one."""
    expected = model.state_dict()
    for name, tensor in state.items():
        if name in expected and tuple(expected[name].shape) != tuple(tensor.shape):
            raise ValueError(f"{name}: shape {tuple(tensor.shape)}, the model expects {tuple(expected[name].shape)}")
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"state_dict does not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
