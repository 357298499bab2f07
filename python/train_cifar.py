"""Trains a VGG or ResNet-18/34 on CIFAR-10 from scratch (or fine-tunes one) and exports it for spikeconv.

All 50 000 training images (``--train-limit`` for fewer), random crop (4-pixel zero
padding) + horizontal flip, SGD with Nesterov momentum 0.9 and weight decay 5e-4, label
smoothing 0.1, a learning rate that rises linearly over the first epoch and then follows a
cosine to 0, both per step. After every epoch the network is evaluated on the test set
(``--test-limit`` for fewer images) and written to ``--out`` (safetensors, atomically) with
the metadata ``export_safetensors.py`` writes (``arch``, ``pool``, ``num_classes``, the
cifar10 normalization, ``source``, ``license``) and the epoch's test count.

VGGs default to average pooling (``--pool avg``): a spiking network takes an average of
spike counts exactly, a max not. ``--init FILE.safetensors`` starts from a trained network
instead (its tensors must fit ``--arch``), e.g. a max-pool VGG fine-tuned into the
average-pool substitute with ``--pool avg``.

The training state (model, optimizer, schedule, the epoch's image order, the random
streams and the running sums) is saved every ``--save-every`` steps and at each epoch's end
to ``--state`` (default: ``--out`` with ``.state.pt``); the same command run again
continues where the last run stopped and gives the same weights as an uninterrupted run.
Settings that change the result must match the saved state's (else a one-line error;
``--restart`` starts over); ``--threads`` and ``--test-limit`` may change. Run from the
repository root:

    nice -n 19 python python/train_cifar.py --arch vgg16 --pool avg --epochs 30 --lr 0.05 \\
        --precision bf16 --threads 2 --out /work/runs/vgg16_avg.safetensors
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cifar10  # noqa: E402
import export_safetensors  # noqa: E402
import resnet_wide  # noqa: E402
import vgg_cifar  # noqa: E402

TRAIN_ARCHS = (*vgg_cifar.CONFIGS, "resnet18", "resnet34")
LICENSE = "MIT OR Apache-2.0"  # the repository's; weights trained here from scratch carry it
TRAIN_BATCHES = [f"data_batch_{i}.bin" for i in range(1, 6)]
# Settings that must match for a saved training state to be resumed.
RECIPE_KEYS = ("arch", "width", "pool", "classifier", "batch_norm", "init", "data_dir", "train_limit", "epochs", "lr",
               "momentum", "weight_decay", "batch_size", "label_smoothing", "warmup_epochs", "seed", "precision")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=TRAIN_ARCHS, help="network to train (default with --init: the file's)")
    p.add_argument("--pool", choices=list(vgg_cifar.POOLS),
                   help="VGG pooling (default avg) or an ImageNet-stem ResNet's stem pool (default max)")
    p.add_argument("--classifier", type=int, choices=list(vgg_cifar.CLASSIFIERS), default=1,
                   help="VGG: linear layers after the features (1: kuangliu, 3: with dropout)")
    p.add_argument("--width", type=float, default=1.0,
                   help="VGG: every convolution's width times this (e.g. 0.25 for a quick experiment)")
    p.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=True, help="VGG: BatchNorm after each conv")
    p.add_argument("--init", type=Path, default=None,
                   help="start from this trained network (.safetensors) instead of random weights; with --pool avg, "
                        "a max-pool network is fine-tuned into the average-pool substitute")
    p.add_argument("--out", type=Path, required=True, help="safetensors file to write after every epoch")
    p.add_argument("--state", type=Path, default=None, help="training state (default: --out with .state.pt)")
    p.add_argument("--data-dir", type=Path, default=Path("../shared/data/cifar10"), help="CIFAR-10 binary batches")
    p.add_argument("--train-limit", type=int, default=None, help="train on the first N training images only")
    p.add_argument("--test-limit", type=int, default=None, help="evaluate on the first N test images only")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate (after the warmup)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--warmup-epochs", type=float, default=1.0, help="linear warmup length (0: none)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    p.add_argument(
        "--precision", choices=("f32", "bf16"), default="f32",
        help="training arithmetic: bf16 runs the forward pass under torch.autocast (convolutions and linear "
             "layers in bfloat16, about 1.9x faster for VGG-16 on a CPU with AVX512-BF16); weights, optimizer, "
             "BatchNorm statistics and every test evaluation stay f32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=50, help="save the training state every N steps")
    p.add_argument("--restart", action="store_true", help="ignore an existing --state and start over")
    return p.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_model(args) -> tuple[torch.nn.Module, str, dict, str | None, dict]:
    """The model to train, its family and architecture (``export_safetensors.identify``'s), its
    pool, and the ``--init`` file's metadata (empty without one)."""
    is_vgg = (args.arch or "").startswith("vgg")
    if args.init is not None:
        with safe_open(str(args.init), "pt") as f:
            parent = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        try:
            family, info = export_safetensors.identify(tensors)
        except ValueError as e:
            raise SystemExit(f"{args.init}: {e}")
        if family == "resnet":
            raise SystemExit(f"{args.init}: a He CIFAR ResNet; this script trains VGGs and ResNet-18/34 "
                             f"(python/finetune_restructured.py fine-tunes He ResNets)")
        if args.arch is not None and args.arch != info["arch"]:
            raise SystemExit(f"--arch {args.arch} contradicts {args.init} "
                             f"({export_safetensors.describe(family, info)})")
        pool = None
        if export_safetensors.has_pool(family, info):
            pool = args.pool or ("avg" if family == "vgg" else "max")
        elif args.pool is not None:
            raise SystemExit(f"--pool: a {export_safetensors.describe(family, info)} has no pooling layer")
        try:
            model = export_safetensors.check_fits(tensors, family, pool)
        except ValueError as e:
            raise SystemExit(f"{args.init}: {e}")
        return model, family, info, pool, parent
    if args.arch is None:
        raise SystemExit("--arch is required without --init")
    if is_vgg:
        pool = args.pool or "avg"
        model = vgg_cifar.vgg(args.arch, args.batch_norm, pool, args.classifier, width=args.width)
    else:
        if args.pool is not None:
            raise SystemExit(f"--pool: {args.arch} (CIFAR stem) has no pooling layer")
        pool = None
        model = resnet_wide.resnet_wide(int(args.arch[len("resnet"):]), "cifar", "cifar")
    family, info = export_safetensors.identify(model.state_dict())
    return model, family, info, pool, {}


def evaluate(model, images, labels, mean, std, batch_size=500) -> int:
    """Number of correct top-1 predictions (BatchNorm and dropout in inference mode)."""
    return cifar10.count_correct(model, images, labels, mean, std, batch_size)


def learning_rate_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warmup to 1 over ``warmup_steps`` (step 0 at 1/warmup_steps), then a cosine to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(step - warmup_steps, total_steps - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * progress))


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # initial weights, then dropout's stream
    generator = torch.Generator().manual_seed(args.seed)  # image order and augmentation

    model, family, info, pool, parent = build_model(args)
    mean_text, std_text = export_safetensors.PRESETS["cifar10"]
    if args.init is not None and parent.get("normalize_mean") and parent.get("normalize_std"):
        mean_text, std_text = parent["normalize_mean"], parent["normalize_std"]
    mean, std = cifar10.parse_triple(mean_text), cifar10.parse_triple(std_text)

    train_x, train_y = cifar10.read_batches([args.data_dir / name for name in TRAIN_BATCHES], args.train_limit)
    test_x, test_y = cifar10.read_batches([args.data_dir / "test_batch.bin"], args.test_limit)
    n_train, n_test = train_x.shape[0], test_x.shape[0]
    description = export_safetensors.describe(family, info) + (f", {pool} pooling" if pool else "")
    parameters = sum(p.numel() for p in model.parameters())
    log(f"{description}, {parameters / 1e6:.2f} M parameters{f', from {args.init}' if args.init else ''}; "
        f"{n_train} training, {n_test} test images; {args.threads} thread(s)")

    steps_per_epoch = math.ceil(n_train / args.batch_size)
    total_steps = max(1, args.epochs * steps_per_epoch)
    warmup_steps = min(total_steps, round(args.warmup_epochs * steps_per_epoch))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay, nesterov=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, warmup_steps, total_steps))

    state_path = args.state or args.out.with_name(args.out.stem + ".state.pt")
    recipe = {k: str(v) for k, v in vars(args).items() if k in RECIPE_KEYS}
    resume = cifar10.load_resume_state(state_path, recipe, args.restart, {"precision": "f32"})
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        log(f"resuming from {state_path}: epoch {resume['epoch'] + 1}, step {resume['step']}/{steps_per_epoch}")
    epoch_counts: list[str] = list(resume["epoch_counts"]) if resume is not None else []

    provenance = {}
    if args.init is not None:
        provenance = {"parent": args.init.name, "parent_sha256": sha256_of(args.init)}
        if "pool" in parent:
            provenance["parent_pool"] = parent["pool"]
        if resume is None:
            before = evaluate(model, test_x, test_y, mean, std)
            log(f"test before training: {before}/{n_test} ({description}; the file's pooling: "
                f"{parent.get('pool', 'not recorded')})")

    def save_state(epoch, step, order, sums):
        state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_name(state_path.name + ".tmp")
        torch.save({
            "recipe": recipe, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": epoch, "step": step, "order": order,
            "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "sums": sums,
            "epoch_counts": epoch_counts,
        }, tmp)
        os.replace(tmp, state_path)

    def export(epochs_done: int, correct: int) -> None:
        tensors = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()
                   if not k.endswith("num_batches_tracked")}
        recipe_text = (f"{n_train} CIFAR-10 training images, random crop pad 4 + flip, SGD Nesterov momentum "
                       f"{args.momentum} lr {args.lr} ({args.warmup_epochs} epoch(s) linear warmup, cosine over "
                       f"{args.epochs} epochs, per step), weight decay {args.weight_decay}, label smoothing "
                       f"{args.label_smoothing}, batch {args.batch_size}, {args.precision} training arithmetic, "
                       f"torch {torch.__version__}")
        if args.init is None:
            source = f"trained by spikeconv python/train_cifar.py, seed {args.seed}, {epochs_done} epochs; {recipe_text}"
            license_text = LICENSE
        else:
            source = (f"{args.init.name} ({parent.get('source', 'no source metadata')}) fine-tuned by spikeconv "
                      f"python/train_cifar.py{f' with {pool} pooling' if pool else ''}, seed {args.seed}, "
                      f"{epochs_done} epochs; {recipe_text}")
            license_text = parent.get("license")
            if license_text and license_text != LICENSE and not license_text.startswith("derived from"):
                license_text = "derived from weights under: " + license_text
        metadata = export_safetensors.family_metadata(family, info, pool, mean_text, std_text, source, license_text)
        metadata.update({
            "epochs_completed": str(epochs_done),
            "epochs_planned": str(args.epochs),
            "seed": str(args.seed),
            "test_correct": str(correct),
            "test_images": str(n_test),
            "test_accuracy": f"{correct / n_test:.4f}",
            "epoch_test_counts": ", ".join(epoch_counts),
            "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **provenance,
        })
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, args.out)

    first_epoch = resume["epoch"] if resume is not None else 0
    if first_epoch >= args.epochs:
        log(f"{state_path}: all {args.epochs} epochs done (test counts per epoch: {', '.join(epoch_counts)})")
        return 0
    for epoch in range(first_epoch, args.epochs):
        model.train()
        if resume is not None:
            # The random streams continue where the saved run left them.
            generator.set_state(resume["generator"])
            torch.set_rng_state(resume["torch_rng"])
        if resume is not None and resume["order"] is not None:
            # Continue the interrupted epoch: same image order, same augmentation from here on.
            order, first_step = resume["order"], resume["step"]
            seen, loss_sum, correct = resume["sums"]
        else:
            order, first_step = torch.randperm(n_train, generator=generator), 0
            seen, loss_sum, correct = 0, 0.0, 0
        resume = None
        start = time.time()
        for step in range(first_step, steps_per_epoch):
            index = order[step * args.batch_size : (step + 1) * args.batch_size]
            x = cifar10.normalize(cifar10.augment(train_x[index], generator), mean, std)
            y = train_y[index]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=args.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += y.shape[0]
            loss_sum += float(loss.detach()) * y.shape[0]
            correct += int((logits.argmax(1) == y).sum())
            if (step + 1) % args.save_every == 0 and step + 1 < steps_per_epoch:
                save_state(epoch, step + 1, order, (seen, loss_sum, correct))
            if step % 20 == 0 or step + 1 == steps_per_epoch:
                per_step = (time.time() - start) / (step + 1 - first_step)
                log(f"epoch {epoch + 1}/{args.epochs} step {step + 1}/{steps_per_epoch} loss {loss_sum / seen:.4f} "
                    f"train acc {correct / seen:.4f} lr {scheduler.get_last_lr()[0]:.5f} ({per_step:.2f} s/step)")
        train_time = time.time() - start
        eval_start = time.time()
        test_correct = evaluate(model, test_x, test_y, mean, std)
        epoch_counts.append(f"{test_correct}/{n_test}")
        export(epoch + 1, test_correct)
        save_state(epoch + 1, 0, None, (0, 0.0, 0))
        log(f"epoch {epoch + 1}/{args.epochs} done: train {train_time:.0f} s, loss {loss_sum / seen:.4f}, "
            f"train acc {correct / seen:.4f}; test {test_correct}/{n_test} ({test_correct / n_test:.2%}, "
            f"{time.time() - eval_start:.0f} s); wrote {args.out}")
    log(f"done: test counts per epoch {', '.join(epoch_counts)}; {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
