"""spikeconv from Python: convert trained CIFAR ResNets into integrate-and-fire spiking
networks and read their accuracy after every timestep, on the CPU backend or a GPU (wgpu).

The functions follow the library's jobs:

    import spikeconv
    net = spikeconv.load("assets/resnet20_restructured.safetensors")   # or a state_dict
    snns = net.convert("data_batch_1.bin", "channel-percentile:99.9,trained", calib_images=2048)
    result = spikeconv.sweep(snns, 32, data="test_batch.bin", source=net)
    result["accuracy"]          # numpy array, one row per network, one column per timestep

Images can also be numpy arrays (``images=`` uint8 N x 3 x 32 x 32, ``labels=``). Errors
are :class:`SpikeconvError` with the library's one-line message. ``progress`` callables
receive ``(stage, done, total)``; :func:`tqdm_progress` adapts a tqdm bar.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np

# Mesa's device-select Vulkan layer prints "XDG_RUNTIME_DIR is invalid" whenever a Vulkan
# instance is created outside a desktop session; spikeconv picks among all adapters itself,
# so the layer is switched off (as the command-line tool does) unless the user set it.
os.environ.setdefault("NODEVICE_SELECT", "1")

from ._spikeconv import Network, SpikeconvError, SpikingNetwork, __version__, devices, load_snn
from . import _spikeconv as _native

__all__ = [
    "Network",
    "SpikingNetwork",
    "SpikeconvError",
    "ann",
    "devices",
    "load",
    "load_snn",
    "sweep",
    "tqdm_progress",
    "__version__",
]

Progress = Callable[[str, int, int], Any]


def _to_numpy(value) -> np.ndarray:
    """A float32 array from a numpy array, a torch tensor or anything numpy reads."""
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().float().numpy()
    return np.ascontiguousarray(value, dtype=np.float32)


def load(
    source,
    *,
    metadata: Optional[Mapping[str, str]] = None,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    normalize: Optional[str] = None,
    block: Optional[str] = None,
    name: str = "<state_dict>",
) -> Network:
    """Loads a CIFAR ResNet: a safetensors file, or a ``state_dict`` (a mapping of names to
    numpy arrays or torch tensors; ``num_batches_tracked`` entries are dropped). The input
    normalization comes from the file's metadata, ``metadata``, ``mean``/``std`` or
    ``normalize`` (``"cifar10"``, ``"imagenet"``); ``block`` names the block form
    (``standard``, ``restructured``, ``preact``) when the metadata does not."""
    triple = lambda v: None if v is None else tuple(float(x) for x in v)  # noqa: E731
    if isinstance(source, (str, os.PathLike)):
        return _native.load_checkpoint(os.fspath(source), mean=triple(mean), std=triple(std),
                                       normalize=normalize, block=block)
    if not isinstance(source, Mapping):
        raise SpikeconvError(f"load: expected a path or a mapping of tensors, got {type(source).__name__}")
    names, arrays = [], []
    for key, value in source.items():
        if key.endswith("num_batches_tracked"):
            continue
        names.append(str(key))
        arrays.append(_to_numpy(value))
    return _native.load_tensors(names, arrays, dict(metadata or {}), name, mean=triple(mean), std=triple(std),
                                normalize=normalize, block=block)


def _images(images, labels):
    if images is None and labels is None:
        return None, None
    if images is None or labels is None:
        raise SpikeconvError("give both images= and labels=")
    return (np.ascontiguousarray(images, dtype=np.uint8),
            np.ascontiguousarray(np.asarray(labels).reshape(-1), dtype=np.int64))


def sweep(
    networks: SpikingNetwork | Iterable[SpikingNetwork],
    timesteps: int,
    *,
    data: Optional[str | os.PathLike] = None,
    images=None,
    labels=None,
    limit: Optional[int] = None,
    backend: str = "auto",
    batch: Optional[int] = None,
    constant_currents: bool = False,
    source: Optional[Network] = None,
    progress: Optional[Progress] = None,
    e_mac_pj: float = 4.6,
    e_ac_pj: float = 0.9,
) -> dict:
    """Every network's accuracy after each timestep 1..T on the same images, beside the ANN.

    Returns a dict: ``methods``, ``correct`` and ``accuracy`` (numpy, networks x T),
    ``ann_correct``, ``firing_rates`` (one array per network, per IF layer),
    ``synops_per_image``, ``energy_uj_per_image`` (per network, after T) and
    ``ann_energy_uj_per_image`` (the estimate of docs/METHOD.md at ``e_mac_pj`` and
    ``e_ac_pj`` per operation), ``predictions`` (networks x images, after T), ``labels``,
    ``ann_predictions``, ``images``, ``backend``, ``device``, ``seconds``; with
    ``source=`` a quantization-aware network also gives ``quantized_ann_correct``."""
    if isinstance(networks, SpikingNetwork):
        networks = [networks]
    images, labels = _images(images, labels)
    return _native.sweep(list(networks), int(timesteps), data=None if data is None else os.fspath(data),
                         images=images, labels=labels, limit=limit, backend=backend, batch=batch,
                         constant_currents=constant_currents, source=source, progress=progress,
                         e_mac_pj=e_mac_pj, e_ac_pj=e_ac_pj)


def ann(network: Network, *, data=None, images=None, labels=None, limit: Optional[int] = None,
        backend: str = "auto", batch: Optional[int] = None) -> dict:
    """The ANN's accuracy: ``images``, ``correct``, ``accuracy``, ``predictions``."""
    images, labels = _images(images, labels)
    return _native.ann(network, data=None if data is None else os.fspath(data), images=images, labels=labels,
                       limit=limit, backend=backend, batch=batch)


def tqdm_progress(**tqdm_options) -> Progress:
    """A progress callable drawing one tqdm bar per stage (needs tqdm)."""
    from tqdm.auto import tqdm

    state = {"stage": None, "bar": None}

    def update(stage: str, done: int, total: int) -> None:
        if stage != state["stage"]:
            if state["bar"] is not None:
                state["bar"].close()
            state["stage"], state["bar"] = stage, tqdm(total=total, desc=stage, **tqdm_options)
        bar = state["bar"]
        bar.update(done - bar.n)

    return update
