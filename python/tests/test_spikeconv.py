"""The Python package against the command-line tool: the same inputs give the same counts.

Needs the reference data (../shared/data or $SPIKECONV_DATA) and the spikeconv binary
($SPIKECONV_BIN, else target/release or target/debug); without them the tests skip, and
fail under CI=true."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

import spikeconv

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "assets" / "resnet20_restructured.safetensors"


def _missing(what: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing (CI=true)")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="session")
def data() -> Path:
    path = Path(os.environ.get("SPIKECONV_DATA", ROOT.parent / "shared" / "data"))
    if not (path / "cifar10" / "test_batch.bin").is_file():
        _missing(f"the reference data ({path})")
    return path


@pytest.fixture(scope="session")
def cli() -> str:
    candidates = [os.environ.get("SPIKECONV_BIN")] + [str(ROOT / "target" / p / "spikeconv") for p in ("release", "debug")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    _missing("the spikeconv binary (cargo build)")


def run_cli(cli: str, *args: str) -> list[dict]:
    out = subprocess.run([cli, *args], check=True, capture_output=True, text=True,
                         env={**os.environ, "NODEVICE_SELECT": "1"}).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A safetensors file as numpy arrays, read with numpy alone (what a state_dict holds)."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        assert info["dtype"] == "F32"
        tensors[name] = np.frombuffer(raw[8 + length + start : 8 + length + end], dtype="<f4").reshape(info["shape"])
    return tensors, metadata


def read_cifar(path: Path, limit: int) -> tuple[np.ndarray, np.ndarray]:
    records = np.fromfile(path, dtype=np.uint8, count=limit * 3073).reshape(limit, 3073)
    return records[:, 1:].reshape(limit, 3, 32, 32), records[:, 0].astype(np.int64)


def test_errors_are_exceptions_with_the_library_message():
    with pytest.raises(spikeconv.SpikeconvError, match="no/such/file.safetensors: cannot read"):
        spikeconv.load("no/such/file.safetensors")
    with pytest.raises(spikeconv.SpikeconvError, match="<state_dict>: unrecognized architecture"):
        spikeconv.load({"conv1.weight": np.zeros((16, 3, 3, 3), np.float32)}, normalize="cifar10")
    assert issubclass(spikeconv.SpikeconvError, ValueError)


def test_ann_counts_equal_the_cli(data, cli):
    network = spikeconv.load(CHECKPOINT)
    assert (network.depth, network.num_classes, network.block) == (20, 10, "restructured")
    result = spikeconv.ann(network, data=data / "cifar10/test_batch.bin", limit=64, backend="cpu")
    (expected,) = run_cli(cli, "ann", "--backend", "cpu", "--model", str(CHECKPOINT),
                          "--data", str(data / "cifar10/test_batch.bin"), "--limit", "64", "--json")
    assert result["correct"] == expected["correct"]
    assert result["images"] == 64 and result["predictions"].shape == (64,)


def test_sweep_counts_equal_the_cli_and_snn_files_round_trip(data, cli, tmp_path):
    network = spikeconv.load(CHECKPOINT)
    calib, test = data / "cifar10/data_batch_1.bin", data / "cifar10/test_batch.bin"
    stages = []
    snns = network.convert(calib, "percentile:99.9,channel-max", calib_images=64, backend="cpu",
                           progress=lambda stage, done, total: stages.append((stage, done, total)))
    assert [s.method for s in snns] == ["percentile:99.9", "channel-max"]
    assert stages and all(0 <= done <= total for _, done, total in stages)
    seen = []
    result = spikeconv.sweep(snns, 4, data=test, limit=24, backend="cpu", source=network,
                             progress=lambda method, done, total: seen.append(done))
    assert result["correct"].shape == (2, 4) and result["accuracy"].shape == (2, 4)
    assert seen == sorted(seen) and seen[-1] == 48
    lines = run_cli(cli, "sweep", "--backend", "cpu", "--model", str(CHECKPOINT), "--calib", str(calib),
                    "--calib-images", "64", "--threshold", "percentile:99.9,channel-max", "--data", str(test),
                    "--limit", "24", "--timesteps", "4", "--json")
    assert [line["correct"] for line in lines] == result["correct"].tolist()
    assert lines[0]["ann_correct"] == result["ann_correct"]
    for line, rates in zip(lines, result["firing_rates"]):
        assert np.array_equal(np.array(line["firing_rate"]), rates)
    # The energy estimate (µJ per image at T) is the command line's, at the default prices.
    for line, energy in zip(lines, result["energy_uj_per_image"]):
        assert energy == line["energy"]["snn_uj_per_image"]
    assert result["ann_energy_uj_per_image"] == lines[0]["energy"]["ann_uj_per_image"]

    # A saved SNN reads back and simulates to the same counts (and equals `sweep --snn`).
    path = tmp_path / "channel-max.safetensors"
    snns[1].save(path)
    again = spikeconv.sweep(spikeconv.load_snn(path), 4, data=test, limit=24, backend="cpu")
    assert again["correct"][0].tolist() == result["correct"][1].tolist()
    (line,) = run_cli(cli, "sweep", "--backend", "cpu", "--snn", str(path), "--data", str(test),
                      "--limit", "24", "--timesteps", "4", "--json")
    assert line["correct"] == again["correct"][0].tolist()


def test_state_dicts_and_numpy_images_give_the_same_counts(data):
    tensors, metadata = read_safetensors(CHECKPOINT)
    from_dict = spikeconv.load(tensors, metadata=metadata)
    from_file = spikeconv.load(CHECKPOINT)
    images, labels = read_cifar(data / "cifar10/test_batch.bin", 40)
    by_arrays = spikeconv.ann(from_dict, images=images, labels=labels, backend="cpu")
    by_path = spikeconv.ann(from_file, data=data / "cifar10/test_batch.bin", limit=40, backend="cpu")
    assert by_arrays["correct"] == by_path["correct"]
    assert np.array_equal(by_arrays["predictions"], by_path["predictions"])

    (snn,) = from_dict.convert(data / "cifar10/data_batch_1.bin", "max", calib_images=32, backend="cpu")
    a = spikeconv.sweep(snn, 3, images=images, labels=labels, backend="cpu")
    b = spikeconv.sweep(snn, 3, data=data / "cifar10/test_batch.bin", limit=40, backend="cpu")
    assert a["correct"].tolist() == b["correct"].tolist()
    assert np.array_equal(a["labels"], labels)

    with pytest.raises(spikeconv.SpikeconvError, match="N×3×32×32"):
        spikeconv.ann(from_dict, images=images[:, :, :16], labels=labels)
    with pytest.raises(spikeconv.SpikeconvError, match=r"labels\[0\] = 12"):
        spikeconv.ann(from_dict, images=images[:1], labels=[12])


def test_signed_neurons_equal_the_cli(data, cli):
    network = spikeconv.load(CHECKPOINT)
    calib, test = data / "cifar10/data_batch_1.bin", data / "cifar10/test_batch.bin"
    (snn,) = network.convert(calib, "channel-percentile:99.9", calib_images=64, neuron="signed", backend="cpu")
    assert snn.neuron == "signed"
    result = spikeconv.sweep([snn], 4, data=test, limit=24, backend="cpu")
    (line,) = run_cli(cli, "sweep", "--backend", "cpu", "--model", str(CHECKPOINT), "--calib", str(calib),
                      "--calib-images", "64", "--threshold", "channel-percentile:99.9", "--neuron", "signed",
                      "--data", str(test), "--limit", "24", "--timesteps", "4", "--json")
    assert line["neuron"] == "signed"
    assert line["correct"] == result["correct"][0].tolist()
    with pytest.raises(spikeconv.SpikeconvError, match="unknown neuron"):
        network.convert(calib, "percentile:99.9", calib_images=64, neuron="lif", backend="cpu")
