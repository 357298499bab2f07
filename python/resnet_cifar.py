"""CIFAR ResNets of He et al. (2016) with PyTorch state_dict names spikeconv reads.

3x3 conv (16) - BN - ReLU, three stages of n basic blocks (16/32/64 channels, the first
block of stages 2 and 3 with stride 2), global average pool, linear. Depth = 6n + 2.
Same layout and names as akamaster/pytorch_resnet_cifar10 (`conv1`, `bn1`,
`layer{1,2,3}.{i}.{conv1,bn1,conv2,bn2}`, `linear`).

Two block forms over the same tensors:
- ``standard``:     y = ReLU(BN2(conv2(ReLU(BN1(conv1(x))))) + shortcut(x))
- ``restructured``: y = shortcut(x) + ReLU(BN2(conv2(ReLU(BN1(conv1(x))))))
  (residual block restructuring of Meng et al., 2022: no ReLU after the addition, so a
  converted spiking network never re-spikes the identity path).
and a third with its own tensors:
- ``preact``:       y = shortcut(x) + conv2(ReLU(BN2(conv1(ReLU(BN1(x))))))
  (pre-activation, He et al., 2016b): the stem is ``conv1`` alone, ``bn1`` normalizes the
  block input (``in_planes`` channels), option B is a 1x1 conv (``shortcut.0``, no BN) on
  the activated input, and ``bn`` + ReLU follow the last block.

Shortcut option A (parameter-free: ``x[:, :, ::s, ::s]`` then zero channels, ``diff // 2``
in front and the rest behind, as spikeconv does) or B (1x1 conv with stride + BN, names
``shortcut.0`` / ``shortcut.1``).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

BLOCK_FORMS = ("standard", "restructured", "preact")
SHORTCUTS = ("A", "B")


class ShortcutA(nn.Module):
    """Option A: subsample by ``stride`` and zero-pad channels (no parameters)."""

    def __init__(self, stride: int, pad_before: int, pad_after: int):
        super().__init__()
        self.stride = stride
        self.pad_before = pad_before
        self.pad_after = pad_after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad_before, self.pad_after))


# Where QCFS's straight-through gradient passes, recorded with every run that trains it.
QCFS_GRADIENT = "0 < x < lambda"


class QCFS(nn.Module):
    """Quantization clip-floor-shift activation (Bu et al., ICLR 2022), a ReLU trained for conversion:
    ``h(x) = lambda * clip(floor(x * L / lambda + 1/2), 0, L) / L``.

    ``lambda`` (one value, or one per channel) is trained and becomes the IF neuron's threshold;
    the floor passes its gradient straight through. After ``L`` timesteps an IF neuron with
    threshold ``lambda``, reset by subtraction and a membrane starting at ``lambda / 2``, fed a
    constant current ``x``, has fired exactly ``h(x) * L / lambda`` times.
    """

    def __init__(self, levels: int, channels: int = 1, initial: float = 8.0):
        super().__init__()
        if levels < 1:
            raise ValueError(f"QCFS needs at least 1 level, got {levels}")
        self.levels = levels
        self.register_parameter("lambda", nn.Parameter(torch.full((channels,), float(initial))))

    @property
    def lam(self) -> torch.Tensor:
        return getattr(self, "lambda")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return QCFSFunction.apply(x, self.lam, self.levels)


def qcfs_reference(x: torch.Tensor, lam: torch.Tensor, levels: int) -> torch.Tensor:
    """QCFS written with autograd's own operations: the oracle of ``QCFSFunction``'s gradients.

    Scale by 1/lambda, straight-through floor, clamp to [0, 1], scale back, as Bu et al.'s
    code (``MyFloor``); the gradient passes where the clip ``clip(x, 0, lambda)`` that the
    floor quantizes is inside its range (PACT's straight-through estimate, Choi et al. 2018).
    Their code, whose ``torch.clamp`` passes the gradient at its bounds, trains the inputs
    rounded to level 0 from below, ``[-lambda / 2L, 0]``, too: a network fine-tuned from
    ReLUs was pulled off its trained state by that (the ResNet-20's loss rose from 0.37 to
    1.4 in 25 steps), so here negative inputs stay untrained, as under the ReLU.
    """
    lam = lam.view(1, -1, 1, 1) if lam.numel() > 1 else lam
    scaled = x * levels / lam + 0.5
    # Straight-through floor: the forward value is floor(scaled), the gradient that of scaled.
    floored = (scaled + (torch.floor(scaled) - scaled).detach()) / levels
    # clamp(floored, 0, 1), passing the gradient where 0 < x < lambda.
    inside = (x > 0) & (x < lam)
    clamped = torch.where(inside, floored, floored.detach().clamp(0, 1))
    return clamped * lam


class QCFSFunction(torch.autograd.Function):
    """QCFS with a hand-written backward: the same values and gradients as ``qcfs_reference``
    in a few passes over the tensor instead of a dozen (training a QCFS ResNet-110 on a CPU
    spent most of its time in the activation's elementwise operations).

    With ``s = floor(x * L / lambda + 1/2)`` and the straight-through floor:
    ``d h / d x = 1`` where ``0 < x < lambda`` (the clip's own range; else 0) and
    ``d h / d lambda = clip(s, 0, L) / L - [0 < x < lambda] * x / lambda``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: torch.Tensor, levels: int) -> torch.Tensor:
        shaped = lam.view(1, -1, 1, 1) if lam.numel() > 1 else lam
        steps = (x * (levels / shaped)).add_(0.5).floor_()
        inside = (x > 0) & (x < shaped)
        out = steps.clamp_(0, levels).mul_(shaped / levels)
        ctx.save_for_backward(x, shaped, out, inside)
        ctx.lam_shape = lam.shape
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, shaped, out, inside = ctx.saved_tensors
        grad_x = grad * inside
        grad_lam = None
        if ctx.needs_input_grad[1]:
            # sum(grad * out) / lambda - sum(grad_x * x) / lambda, per channel or in all.
            dims = (0, 2, 3) if shaped.numel() > 1 else tuple(range(grad.dim()))
            per = (grad * out).sum(dims) - (grad_x * x).sum(dims)
            grad_lam = (per / shaped.reshape(-1)).reshape(ctx.lam_shape)
        return grad_x, grad_lam, None


def make_activation(activation: str, channels: int) -> nn.Module:
    """``relu`` or ``qcfs:L`` (``qcfs:L:channel`` for one lambda per channel)."""
    if activation == "relu":
        return nn.ReLU()
    parts = activation.split(":")
    if parts[0] == "qcfs" and len(parts) in (2, 3) and parts[1].isdigit():
        per_channel = len(parts) == 3 and parts[2] == "channel"
        if len(parts) == 3 and not per_channel:
            raise ValueError(f"activation {activation!r}: the third part must be 'channel'")
        return QCFS(int(parts[1]), channels if per_channel else 1)
    raise ValueError(f"activation must be relu, qcfs:L or qcfs:L:channel, got {activation!r}")


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str, block: str,
                 activation: str = "relu"):
        super().__init__()
        self.relu1 = make_activation(activation, planes)
        self.relu2 = make_activation(activation, planes)
        if block not in BLOCK_FORMS:
            raise ValueError(f"block must be one of {BLOCK_FORMS}, got {block!r}")
        self.block = block
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                diff = planes - in_planes
                self.shortcut = ShortcutA(stride, diff // 2, diff - diff // 2)
            elif shortcut == "B":
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
                )
            else:
                raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        if self.block == "standard":
            return self.relu2(branch + self.shortcut(x))
        # Restructured: the ReLU closes the branch; nothing follows the sum.
        return self.shortcut(x) + self.relu2(branch)


class PreActBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module = nn.Identity()
        self.projects = False
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                diff = planes - in_planes
                self.shortcut = ShortcutA(stride, diff // 2, diff - diff // 2)
            elif shortcut == "B":
                self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False))
                self.projects = True
            else:
                raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        branch = self.conv2(F.relu(self.bn2(self.conv1(activated))))
        return branch + self.shortcut(activated if self.projects else x)


class ResNetCifar(nn.Module):
    def __init__(
        self,
        blocks_per_stage: int = 3,
        num_classes: int = 10,
        block: str = "standard",
        shortcut: str = "A",
        widths: tuple[int, ...] = (16, 32, 64),
        activation: str = "relu",
    ):
        super().__init__()
        self.block = block
        if activation != "relu" and block == "preact":
            raise ValueError("a trained activation (qcfs) is supported for standard and restructured blocks only")
        self.shortcut_kind = shortcut
        if block not in BLOCK_FORMS:
            raise ValueError(f"block must be one of {BLOCK_FORMS}, got {block!r}")
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        if block != "preact":
            self.bn1 = nn.BatchNorm2d(widths[0])
            self.relu = make_activation(activation, widths[0])
        in_planes = widths[0]
        for stage, planes in enumerate(widths):
            layers = []
            for index in range(blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                if block == "preact":
                    layers.append(PreActBlock(in_planes, planes, stride, shortcut))
                else:
                    layers.append(BasicBlock(in_planes, planes, stride, shortcut, block, activation))
                in_planes = planes
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layers))
        if block == "preact":
            self.bn = nn.BatchNorm2d(in_planes)
        self.num_stages = len(widths)
        self.linear = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        if self.block != "preact":
            x = self.relu(self.bn1(x))
        for stage in range(self.num_stages):
            x = getattr(self, f"layer{stage + 1}")(x)
        if self.block == "preact":
            x = F.relu(self.bn(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.linear(x)


def depth_of(blocks_per_stage: int, stages: int = 3) -> int:
    return 2 + 2 * stages * blocks_per_stage


def strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Removes the ``module.`` prefix of checkpoints saved from ``DataParallel``."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def infer_architecture(state: dict[str, torch.Tensor]) -> dict:
    """Reads blocks per stage, widths, classes and shortcut option from tensor names/shapes."""
    stages: dict[int, set[int]] = {}
    for name in state:
        if name.startswith("layer"):
            stage, index = name[len("layer"):].split(".")[:2]
            stages.setdefault(int(stage), set()).add(int(index))
    if not stages:
        raise ValueError("no layer1.* tensors: not a CIFAR ResNet state_dict")
    counts = {len(v) for v in stages.values()}
    if len(counts) != 1:
        raise ValueError(f"stages have different block counts {sorted(counts)}; this model needs equal stages")
    widths = tuple(state[f"layer{s}.0.conv1.weight"].shape[0] for s in sorted(stages))
    classifier = "linear" if "linear.weight" in state else "fc"
    shortcut = "B" if any(".shortcut.0." in k or ".downsample.0." in k for k in state) else "A"
    return {
        "blocks_per_stage": counts.pop(),
        "widths": widths,
        "num_classes": state[f"{classifier}.weight"].shape[0],
        "shortcut": shortcut,
    }


def qcfs_modules(model: nn.Module) -> dict[str, QCFS]:
    """The model's QCFS activations by module name (``relu``, ``layer1.0.relu1``, ...)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, QCFS)}


def from_state_dict(state: dict[str, torch.Tensor], block: str = "standard", activation: str = "relu") -> ResNetCifar:
    """Builds the model of ``block`` form that ``state`` fits and loads it (strictly).

    With a ``qcfs`` activation, lambdas missing from ``state`` keep their initial value (the
    caller sets them, e.g. from calibration); lambdas in ``state`` are loaded."""
    state = strip_module_prefix(state)
    state = {k.replace(".downsample.", ".shortcut."): v for k, v in state.items()}
    if "fc.weight" in state:
        state = {("linear." + k[3:] if k.startswith("fc.") else k): v for k, v in state.items()}
    arch = infer_architecture(state)
    model = ResNetCifar(arch["blocks_per_stage"], arch["num_classes"], block, arch["shortcut"], arch["widths"],
                        activation)
    # num_batches_tracked is optional in a file (safetensors exports usually drop it).
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked") and not k.endswith(".lambda")]
    if missing or unexpected:
        raise ValueError(f"state_dict does not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model


def _identity_bn(channels: int) -> dict[str, torch.Tensor]:
    return {
        "weight": torch.ones(channels),
        "bias": torch.zeros(channels),
        "running_mean": torch.zeros(channels),
        "running_var": torch.ones(channels),
    }


def preact_state_from_standard(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A starting point for fine-tuning a standard network into the pre-activation form.

    Each block keeps its convolutions; the standard ``bn1`` (after ``conv1``) becomes the
    pre-activation ``bn2`` (same place); the standard ``bn2`` scale is folded into
    ``conv2`` (its shift has no place: pre-activation convs have no bias); the stem's BN
    becomes the first block's ``bn1``; every other ``bn1``, the final ``bn`` and option-B
    projections' BNs start as identities. Running statistics are then only a guess:
    recompute them (see ``recalibrate_batch_norm``) before training.
    """
    state = strip_module_prefix(state)
    state = {k.replace(".downsample.", ".shortcut."): v for k, v in state.items()}
    if "fc.weight" in state:
        state = {("linear." + k[3:] if k.startswith("fc.") else k): v for k, v in state.items()}
    arch = infer_architecture(state)
    out = {"conv1.weight": state["conv1.weight"], "linear.weight": state["linear.weight"],
           "linear.bias": state["linear.bias"]}
    in_planes = arch["widths"][0]
    for s, planes in enumerate(arch["widths"], start=1):
        for i in range(arch["blocks_per_stage"]):
            name = f"layer{s}.{i}"
            if s == 1 and i == 0:
                bn1 = {p: state[f"bn1.{p}"] for p in ("weight", "bias", "running_mean", "running_var")}
            else:
                bn1 = _identity_bn(in_planes)
            out.update({f"{name}.bn1.{p}": v for p, v in bn1.items()})
            out[f"{name}.conv1.weight"] = state[f"{name}.conv1.weight"]
            for p in ("weight", "bias", "running_mean", "running_var"):
                out[f"{name}.bn2.{p}"] = state[f"{name}.bn1.{p}"]
            scale = state[f"{name}.bn2.weight"] / torch.sqrt(state[f"{name}.bn2.running_var"] + 1e-5)
            out[f"{name}.conv2.weight"] = state[f"{name}.conv2.weight"] * scale[:, None, None, None]
            if f"{name}.shortcut.0.weight" in state:
                out[f"{name}.shortcut.0.weight"] = state[f"{name}.shortcut.0.weight"]
            in_planes = planes
    out.update({f"bn.{p}": v for p, v in _identity_bn(in_planes).items()})
    return out


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, batches) -> None:
    """Replaces every BN's running statistics by their average over ``batches`` (inputs)."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for x in batches:
        model(x)
    for m in norms:
        m.momentum = 0.1


# The shift a grown block's closing BatchNorm starts with (its scale starts at 0). Zero would
# make the block an exact identity, but PyTorch's ReLU passes no gradient at 0, so such a
# block would never train; a tiny positive shift keeps every unit of the new branch in the
# ReLU's linear part (gradient 1 to the BN's scale and shift) and changes the function by
# a constant 1e-4 on the residual stream.
GROWN_BLOCK_SHIFT = 1e-4


def grow_state(state: dict[str, torch.Tensor], blocks_per_stage: int, placement: str = "interleave",
               seed: int = 0) -> tuple[dict[str, torch.Tensor], list[list[int | None]]]:
    """A deeper CIFAR ResNet's state built around a trained one's blocks (shortcut A or B).

    Each stage gets ``blocks_per_stage`` blocks: the trained ones, in order, and new ones in
    between. A new block is a stride-1 block of the stage's width whose closing BN has scale
    0 and shift ``GROWN_BLOCK_SHIFT``, so that in the restructured form
    ``x + ReLU(BN2(conv2(...)))`` it starts as (almost exactly) the identity; its
    convolutions are He-initialized from ``seed`` so they can learn once the scale moves.

    ``placement``: ``interleave`` puts the new blocks evenly between the trained ones
    (trained, new, trained, new, ... for a doubling), so every part of the stage gains
    capacity and no run of untrained blocks sits between two trained ones; ``end`` appends
    them after the stage's trained blocks. Returns the state and, per stage, the source
    index of each new block position (``None`` for a new block).
    """
    state = strip_module_prefix(state)
    arch = infer_architecture(state)
    old = arch["blocks_per_stage"]
    if blocks_per_stage < old:
        raise ValueError(f"cannot grow {old} blocks per stage to {blocks_per_stage}")
    if placement not in ("interleave", "end"):
        raise ValueError(f"placement must be interleave or end, got {placement!r}")
    generator = torch.Generator().manual_seed(seed)
    out = {k: v for k, v in state.items() if not k.startswith("layer")}
    layout = []
    for s, width in enumerate(arch["widths"], start=1):
        if placement == "end":
            sources = list(range(old)) + [None] * (blocks_per_stage - old)
        else:
            # Trained block i goes to position floor(i * new / old): evenly spread, block 0
            # (the stage's strided, widening block) stays first.
            positions = {i * blocks_per_stage // old: i for i in range(old)}
            sources = [positions.get(p) for p in range(blocks_per_stage)]
        layout.append(sources)
        for position, source in enumerate(sources):
            prefix = f"layer{s}.{position}."
            if source is not None:
                old_prefix = f"layer{s}.{source}."
                out.update({prefix + k[len(old_prefix):]: v for k, v in state.items() if k.startswith(old_prefix)})
                continue
            for conv in ("conv1", "conv2"):
                fan_in = width * 9
                out[prefix + conv + ".weight"] = torch.randn(width, width, 3, 3, generator=generator) * math.sqrt(
                    2.0 / fan_in)
            out.update({prefix + "bn1." + k: v for k, v in _identity_bn(width).items()})
            bn2 = _identity_bn(width)
            bn2["weight"] = torch.zeros(width)
            bn2["bias"] = torch.full((width,), GROWN_BLOCK_SHIFT)
            out.update({prefix + "bn2." + k: v for k, v in bn2.items()})
    return out, layout
