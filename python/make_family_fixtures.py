"""Writes the loader-exactness fixtures ``tests/fixtures/families/*.json``: PyTorch's logits for
a VGG-16, a ResNet-18 and a ResNet-34 with seeded random weights, which spikeconv's test
regenerates bit for bit and compares against.

Generator ``splitmix64-fnv1a64 v1`` (all integer arithmetic on unsigned 64-bit values,
wrapping mod 2^64; ``^`` is XOR, ``>>`` a logical shift):

    fnv1a64(bytes):  h = 0xcbf29ce484222325; for each byte b: h = (h ^ b) * 0x100000001b3
    splitmix64(x):   x = x + 0x9E3779B97F4A7C15
                     z = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
                     z = (z ^ (z >> 27)) * 0x94D049BB133111EB
                     return z ^ (z >> 31)

Element ``i`` (0-based, row-major over the tensor's shape) of the tensor named ``name``
(its state_dict name as written in the safetensors file, e.g. ``features.0.weight``, hashed
as UTF-8 bytes) in the network of seed ``seed``:

    bits = splitmix64(seed ^ (fnv1a64(name) + i))     # the addition first, then the XOR
    u    = (bits >> 40) as f64 / 2^24                 # exact, in [0, 1)

then, computed in float64 and rounded to the nearest float32 once at the end, by the
name's suffix and the tensor's rank:

    *.weight, rank 4 (conv) or 2 (linear)  (2u - 1) * sqrt(6 / fan_in),
                                           fan_in = product of shape[1:] (in_channels*kh*kw, in_features)
    *.weight, rank 1 (BatchNorm gamma)     0.5 + u
    *.bias (conv, linear, BatchNorm beta)  (2u - 1) * 0.1
    *.running_mean                         (2u - 1) * 0.1
    *.running_var                          0.5 + u

(``sqrt(6 / fan_in)``: the float64 quotient, then the correctly rounded float64 square root;
``0.1`` is the float64 nearest 0.1.) ``num_batches_tracked`` is not generated (the export
drops it).

Networks: ``vgg16`` (seed 1; BatchNorm, max-pooling, three linear layers), ``resnet18``
(seed 2; CIFAR names ``shortcut`` / ``linear``, 3x3 stem), ``resnet34`` (seed 3;
torchvision names ``downsample`` / ``fc``, the 7x7 ImageNet stem and its 3x3 max-pool).
Each is filled by the generator, saved as a ``.pt`` state_dict, exported by
``export_safetensors.main`` (``--normalize cifar10`` and its ``--arch`` / ``--pool``), read
back, loaded strictly into a new PyTorch model and run in eval mode on the first 64 images
of ``test_batch.bin``, normalized with the cifar10 preset in float32 as
``cifar10.normalize`` does.

The JSON (one per network, sorted keys):

    arch, seed, generator ("splitmix64-fnv1a64 v1"), model (the constructor's settings),
    export_args (export_safetensors's options), metadata (the exported file's __metadata__),
    tensors: [{name, shape, fnv1a64_f32le (16 hex digits: fnv1a64 over the tensor's
               little-endian float32 bytes), first (its first 3 values)}] in sorted name order,
    images ("test_batch.bin first 64"), labels (64),
    logits (64 x 10: the float32 model on the float32 inputs, each value the float32 as a
            JSON number that reads back exactly),
    logits_f64 (64 x 10: the same weights and inputs, every operation in float64)

Run from the repository root (about a minute on one thread):

    /work/venv-py/bin/python python/make_family_fixtures.py
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cifar10  # noqa: E402
import export_safetensors  # noqa: E402
import resnet_wide  # noqa: E402
import vgg_cifar  # noqa: E402

GENERATOR = "splitmix64-fnv1a64 v1"
IMAGES = 64
MASK = (1 << 64) - 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3

# name, seed, constructor, constructor settings, export options
NETWORKS = [
    ("vgg16", 1, lambda: vgg_cifar.vgg("vgg16", batch_norm=True, pool="max", classifier=3),
     {"family": "vgg", "config": "vgg16", "batch_norm": True, "pool": "max", "classifier": 3},
     ["--arch", "vgg16", "--pool", "max"]),
    ("resnet18", 2, lambda: resnet_wide.resnet_wide(18, naming="cifar", stem="cifar"),
     {"family": "resnet_wide", "depth": 18, "naming": "cifar", "stem": "cifar"},
     ["--arch", "resnet18"]),
    ("resnet34", 3, lambda: resnet_wide.resnet_wide(34, naming="torchvision", stem="imagenet", pool="max"),
     {"family": "resnet_wide", "depth": 34, "naming": "torchvision", "stem": "imagenet", "pool": "max"},
     ["--arch", "resnet34", "--pool", "max"]),
]


def fnv1a64(data: bytes) -> int:
    """FNV-1a, 64 bits (one byte at a time: the definition is sequential)."""
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & MASK
    return h


def splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's output function on a uint64 array (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, name: str, count: int) -> np.ndarray:
    """``u`` of elements 0..count-1 of tensor ``name`` (float64 in [0, 1))."""
    with np.errstate(over="ignore"):
        index = np.arange(count, dtype=np.uint64)
        counter = np.uint64(fnv1a64(name.encode("utf-8"))) + index
        bits = splitmix64(np.uint64(seed) ^ counter)
    return (bits >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def generate(seed: int, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 tensor ``name`` of ``shape`` as the generator defines it (module docstring)."""
    count = math.prod(shape)
    u = uniforms(seed, name, count)
    if name.endswith(".weight") and len(shape) in (2, 4):
        fan_in = math.prod(shape[1:])
        values = (2.0 * u - 1.0) * math.sqrt(6.0 / fan_in)
    elif name.endswith(".weight") and len(shape) == 1:
        values = 0.5 + u
    elif name.endswith(".bias") or name.endswith(".running_mean"):
        values = (2.0 * u - 1.0) * 0.1
    elif name.endswith(".running_var"):
        values = 0.5 + u
    else:
        raise ValueError(f"{name}: no generator rule for a tensor of shape {list(shape)}")
    return values.astype(np.float32).reshape(shape)


def fill(model: torch.nn.Module, seed: int) -> None:
    """Sets every tensor of the model's state_dict (but ``num_batches_tracked``) from the generator,
    checking that the rank rule agrees with the module the tensor belongs to."""
    modules = dict(model.named_modules())
    state = model.state_dict()
    for name, tensor in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        module = modules[name.rsplit(".", 1)[0]]
        if name.endswith(".weight"):
            is_bn = isinstance(module, torch.nn.BatchNorm2d)
            if is_bn != (tensor.dim() == 1) or not (is_bn or isinstance(module, (torch.nn.Conv2d, torch.nn.Linear))):
                raise ValueError(f"{name}: a {type(module).__name__} weight of rank {tensor.dim()} breaks the rank rule")
        tensor.copy_(torch.from_numpy(generate(seed, name, tuple(tensor.shape))))


def tensor_hash(array: np.ndarray) -> str:
    return f"{fnv1a64(np.ascontiguousarray(array, dtype='<f4').tobytes()):016x}"


def json_float(value) -> float:
    """A float32 (or float64) as the float64 Python writes back exactly."""
    return float(value)


@torch.no_grad()
def make_fixture(arch: str, seed: int, build, settings: dict, export_options: list[str], images: torch.Tensor,
                 labels: torch.Tensor, workdir: Path) -> dict:
    model = build().eval()
    fill(model, seed)
    checkpoint, exported = workdir / f"{arch}.pt", workdir / f"{arch}.safetensors"
    torch.save(model.state_dict(), checkpoint)
    export_args = ["--normalize", "cifar10", *export_options,
                   "--source", f"random weights ({GENERATOR}, seed {seed}) by spikeconv python/make_family_fixtures.py",
                   "--license", "MIT OR Apache-2.0"]
    export_safetensors.main([str(checkpoint), str(exported), *export_args])

    with safe_open(str(exported), "pt") as f:
        metadata = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for name, tensor in tensors.items():
        expected = generate(seed, name, tuple(tensor.shape))
        if not np.array_equal(tensor.numpy(), expected):
            raise SystemExit(f"{arch}: {name} in the exported file differs from the generator's")
    family, _ = export_safetensors.identify(tensors)
    reloaded = export_safetensors.check_fits(tensors, family, metadata.get("pool")).eval()

    mean, std = (cifar10.parse_triple(t) for t in export_safetensors.PRESETS["cifar10"])
    x = cifar10.normalize(images, mean, std)
    logits = reloaded(x)
    logits_f64 = copy.deepcopy(reloaded).double()(x.double())
    spread = float((logits.double() - logits_f64).abs().max() / logits_f64.abs().max())
    return {
        "arch": arch,
        "seed": seed,
        "generator": GENERATOR,
        "model": settings,
        "export_args": export_args,
        "metadata": metadata,
        "tensors": [
            {"name": name, "shape": list(tensors[name].shape), "fnv1a64_f32le": tensor_hash(tensors[name].numpy()),
             "first": [json_float(v) for v in tensors[name].flatten()[:3].tolist()]}
            for name in sorted(tensors)
        ],
        "images": f"test_batch.bin first {IMAGES}",
        "labels": labels.tolist(),
        "logits": [[json_float(v) for v in row] for row in logits.numpy()],
        "logits_f64": [[json_float(v) for v in row] for row in logits_f64.numpy()],
        "_spread": spread,
    }


def self_check(path: Path, build, seed: int) -> None:
    """Reloads the written fixture and recomputes every tensor's hash from the generator."""
    fixture = json.loads(path.read_text())
    state = {k: v for k, v in build().state_dict().items() if not k.endswith("num_batches_tracked")}
    names = [t["name"] for t in fixture["tensors"]]
    if names != sorted(state):
        raise SystemExit(f"{path}: tensor names differ from the model's")
    for entry in fixture["tensors"]:
        array = generate(seed, entry["name"], tuple(entry["shape"]))
        if tensor_hash(array) != entry["fnv1a64_f32le"]:
            raise SystemExit(f"{path}: {entry['name']}: hash {tensor_hash(array)} != {entry['fnv1a64_f32le']}")
        if [float(v) for v in array.flatten()[:3]] != entry["first"]:
            raise SystemExit(f"{path}: {entry['name']}: first values differ")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/cifar10"), help="CIFAR-10 binary batches")
    p.add_argument("--out", type=Path, default=Path("tests/fixtures/families"), help="folder for the JSON files")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    images, labels = cifar10.read_batches([args.data / "test_batch.bin"], IMAGES)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for arch, seed, build, settings, export_options in NETWORKS:
            start = time.time()
            fixture = make_fixture(arch, seed, build, settings, export_options, images, labels, Path(tmp))
            spread = fixture.pop("_spread")
            path = args.out / f"{arch}.json"
            path.write_text(json.dumps(fixture, sort_keys=True, separators=(",", ":")) + "\n")
            self_check(path, build, seed)
            logits = np.array(fixture["logits_f64"])
            correct = int((logits.argmax(1) == labels.numpy()).sum())
            print(f"{path}: {len(fixture['tensors'])} tensors, {path.stat().st_size / 1024:.0f} KB; logits |max| "
                  f"{np.abs(logits).max():.3g}, std {logits.std():.3g}, {len(set(logits.argmax(1).tolist()))} distinct "
                  f"argmax classes, {correct}/{IMAGES} 'correct'; float32 vs float64 max error {spread:.2e} of |max|; "
                  f"hashes rechecked; {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
