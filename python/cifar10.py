"""CIFAR-10 from the official binary batches (``data_batch_*.bin``, ``test_batch.bin``).

Each record is 3073 bytes: a label byte, then the 32x32 red, green and blue planes.
The network input is ``pixel / 255`` then per channel ``(x - mean) / std``, as spikeconv does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

RECORD = 3073


def read_batches(paths: list[Path], limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 ``N x 3 x 32 x 32`` and labels as int64, the first ``limit`` of them."""
    images, labels = [], []
    for path in paths:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % RECORD:
            raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {RECORD}-byte CIFAR-10 records")
        raw = raw.reshape(-1, RECORD)
        labels.append(raw[:, 0].astype(np.int64))
        images.append(raw[:, 1:].reshape(-1, 3, 32, 32))
    x = torch.from_numpy(np.concatenate(images))
    y = torch.from_numpy(np.concatenate(labels))
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y


def parse_triple(text: str) -> tuple[float, float, float]:
    """``"0.485,0.456,0.406"`` -> three floats (the metadata format spikeconv reads)."""
    values = tuple(float(v) for v in text.split(","))
    if len(values) != 3:
        raise ValueError(f"{text!r}: expected three comma-separated numbers")
    return values  # type: ignore[return-value]


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 ``N x 3 x H x W`` -> float32 ``(pixel / 255 - mean) / std``."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean_t) / std_t


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 32x32 crop of the image zero-padded by 4 pixels (black, as torchvision's
    ``RandomCrop(32, padding=4)``), then a horizontal flip with probability 1/2; uint8 in and out."""
    n = images.shape[0]
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    offsets = torch.randint(0, 9, (n, 2), generator=generator)
    out = torch.empty_like(images)
    for i in range(n):
        dy, dx = int(offsets[i, 0]), int(offsets[i, 1])
        out[i] = padded[i, :, dy : dy + 32, dx : dx + 32]
    flip = torch.rand(n, generator=generator) < 0.5
    out[flip] = out[flip].flip(3)
    return out


@torch.no_grad()
def count_correct(model, images: torch.Tensor, labels: torch.Tensor, mean, std, batch_size: int = 500) -> int:
    """Top-1 correct predictions of ``model`` in inference mode (BatchNorm statistics, no
    dropout) on uint8 ``images`` normalized with ``mean`` / ``std``."""
    model.eval()
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        x = normalize(images[start : start + batch_size], mean, std)
        correct += int((model(x).argmax(1) == labels[start : start + batch_size]).sum())
    return correct


def load_resume_state(state_path: Path, recipe: dict, restart: bool, defaults: dict | None = None):
    """The saved training state at ``state_path`` to resume from (``None`` without one, or
    with ``restart``); a state saved with another ``recipe`` (the settings that change the
    result) is an error naming the settings that differ. ``defaults`` gives the value of a
    setting that a state saved before the setting existed ran with (for the settings this run
    has)."""
    if restart or not state_path.exists():
        return None
    resume = torch.load(state_path, weights_only=False)
    saved = {**{k: str(v) for k, v in (defaults or {}).items() if k in recipe}, **resume["recipe"]}
    if saved != recipe:
        changed = sorted(k for k in recipe if saved.get(k) != recipe[k])
        raise SystemExit(f"{state_path}: saved by a run with other settings ({', '.join(changed)}); "
                         f"pass --restart to start over or another --out")
    return resume
