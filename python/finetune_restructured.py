"""Fine-tunes a standard CIFAR ResNet into the restructured (or pre-activation) block form and exports it.

Residual block restructuring (Meng et al., 2022, "Training much deeper spiking neural
networks with a small number of time-steps"): every block's ReLU moves from after the
addition into the residual branch, ``y = shortcut(x) + ReLU(BN2(conv2(...)))``. The
tensors are the same, so the standard weights are the starting point; a few epochs of
SGD recover the accuracy the change of graph costs.

``--form preact`` fine-tunes into pre-activation blocks instead,
``y = shortcut(x) + conv2(ReLU(BN2(conv1(ReLU(BN1(x))))))``: the convolutions start from
the standard ones (``resnet_cifar.preact_state_from_standard``), BatchNorm statistics are
recomputed on 2048 training images, then the same SGD schedule runs.

Reads the checkpoint (safetensors; normalization, shortcut and source from its
``__metadata__``), evaluates it as it is and in the new form, fine-tunes on the training
batches, evaluates on ``test_batch.bin`` and writes a safetensors file with the metadata
spikeconv reads (``block = "restructured"`` or ``"preact"``). Run from the repository root:

    nice -n 19 python python/finetune_restructured.py \\
        --checkpoint ../shared/data/weights/resnet20_cifar10_akamaster.safetensors \\
        --out /work/runs/resnet20_restructured.safetensors --epochs 4 --threads 1
"""

from __future__ import annotations

import argparse
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
import resnet_cifar  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="standard-form checkpoint (.safetensors)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint to write (.safetensors)")
    p.add_argument("--data-dir", type=Path, default=Path("../shared/data/cifar10"), help="CIFAR-10 binary batches")
    p.add_argument(
        "--train-batches", default="data_batch_1.bin,data_batch_2.bin,data_batch_3.bin,data_batch_4.bin,data_batch_5.bin",
        help="comma-separated (default: the whole training set)",
    )
    p.add_argument("--form", choices=["restructured", "standard", "preact"], default="restructured",
                   help="block form to fine-tune into (standard: the blocks as they are, e.g. to train them "
                        "with --activation qcfs:L)")
    p.add_argument(
        "--grow-to-depth", type=int, default=None,
        help="grow the network to this depth (6n + 2) first: each stage gets n blocks, the trained ones and new "
             "ones that start as the identity (resnet_cifar.grow_state); restructured form only",
    )
    p.add_argument("--grow-placement", choices=["interleave", "end"], default="interleave",
                   help="where the new blocks go: between the trained ones (default) or after them")
    p.add_argument(
        "--activation", default="relu",
        help="relu, or qcfs:L (qcfs:L:channel for one lambda per channel): every ReLU that becomes an IF neuron is "
             "trained as the quantized clip-floor-shift activation with L levels and a trainable lambda, exported as "
             "'<relu>.lambda' tensors (restructured or standard form)",
    )
    p.add_argument("--lambda-init-percentile", type=float, default=99.9,
                   help="a new lambda starts at this percentile of its ReLU's positive outputs on the calibration images")
    p.add_argument("--lambda-calibration-images", type=int, default=512,
                   help="training images (un-augmented, the first N) that set each new lambda's start")
    p.add_argument(
        "--teacher", type=Path, default=None,
        help="knowledge distillation (Hinton et al., 2015): a trained ReLU checkpoint (standard or restructured "
             "blocks, same normalization) whose softened outputs the network also learns, e.g. the network a "
             "grown one came from")
    p.add_argument("--distill-weight", type=float, default=0.9,
                   help="with --teacher: loss = (1 - w) * cross-entropy + w * T^2 * KL(teacher || student) at T")
    p.add_argument("--distill-temperature", type=float, default=4.0, help="with --teacher: the softmax temperature T")
    p.add_argument("--epochs", type=int, default=4, help="0: evaluate and export without training")
    p.add_argument("--lr", type=float, default=0.02, help="initial learning rate (cosine to 0)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--eval-limit", type=int, default=None, help="evaluate on the first N test images")
    p.add_argument(
        "--epoch-eval-limit", type=int, default=1000,
        help="after each epoch, evaluate on the first N test images and save the checkpoint so far",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    p.add_argument(
        "--precision", choices=("f32", "bf16"), default="f32",
        help="training arithmetic: bf16 runs the forward pass under torch.autocast (convolutions in bfloat16, "
             "about 1.8x faster for ResNet-110 on a CPU with AVX512-BF16); weights, optimizer, BatchNorm "
             "statistics, lambdas and every test evaluation stay f32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--state", type=Path, default=None,
        help="training state to resume from and save to (default: --out with .state.pt); a rerun of the same "
             "command continues where the last one stopped",
    )
    p.add_argument("--save-every", type=int, default=50, help="save the training state every N steps")
    p.add_argument("--restart", action="store_true", help="ignore an existing --state and start over")
    p.add_argument("--mean", default=None, help="a,b,c; default: the checkpoint's normalize_mean")
    p.add_argument("--std", default=None, help="a,b,c; default: the checkpoint's normalize_std")
    return p.parse_args(argv)


# Settings that must match for a saved training state to be resumed.
RECIPE_KEYS = ("checkpoint", "data_dir", "train_batches", "form", "epochs", "lr", "momentum", "weight_decay",
               "batch_size", "limit", "seed", "mean", "std", "grow_to_depth", "grow_placement", "activation",
               "lambda_init_percentile", "lambda_calibration_images", "precision", "teacher", "distill_weight",
               "distill_temperature")
# What a state saved before a setting existed ran with.
RECIPE_DEFAULTS = {"precision": "f32", "teacher": "None", "distill_weight": "0.9", "distill_temperature": "4.0",
                   "qcfs_gradient": "levels 1..L-1", "lambda_floor": "none"}


def sha256_of(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@torch.no_grad()
def initialize_lambdas(model, relu_model, images, percentile: float) -> dict[str, float]:
    """Sets each QCFS lambda to ``percentile`` of the positive outputs of the ReLU it replaces
    (per channel if the lambda is), measured in ``relu_model`` (same weights, plain ReLUs, BN in
    inference mode). Returns each layer's mean lambda."""
    outputs: dict[str, torch.Tensor] = {}
    names = resnet_cifar.qcfs_modules(model)
    relus = dict(relu_model.named_modules())
    hooks = [relus[name].register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o))
             for name in names]
    relu_model.eval()
    relu_model(images)
    for hook in hooks:
        hook.remove()
    generator = torch.Generator().manual_seed(0)
    chosen = {}
    for name, module in names.items():
        out = outputs[name]
        columns = [out.transpose(0, 1).reshape(out.shape[1], -1)] if module.lam.numel() > 1 else [out.reshape(1, -1)]
        values = []
        for row in columns[0]:
            positive = row[row > 0]
            if positive.numel() == 0:
                values.append(1.0)
                continue
            if positive.numel() > 1 << 22:
                positive = positive[torch.randint(positive.numel(), (1 << 22,), generator=generator)]
            values.append(float(torch.quantile(positive, percentile / 100.0)))
        module.lam.copy_(torch.tensor(values))
        chosen[name] = sum(values) / len(values)
    return chosen


def evaluate(model, images, labels, mean, std, batch_size=500) -> int:
    """Number of correct top-1 predictions (BN in inference mode)."""
    return cifar10.count_correct(model, images, labels, mean, std, batch_size)


def grown_text(args) -> str:
    if not args.grow_to_depth:
        return ""
    return f", grown to depth {args.grow_to_depth} ({args.grow_placement} placement of identity-started blocks)"


def activation_text(args) -> str:
    if args.activation == "relu":
        return ""
    return (f", activation {args.activation} (lambdas from the {args.lambda_init_percentile} percentile on "
            f"{args.lambda_calibration_images} training images, no weight decay)")


def teacher_text(args) -> str:
    if args.teacher is None:
        return ""
    return (f", distilled from {args.teacher.name} (weight {args.distill_weight}, temperature "
            f"{args.distill_temperature})")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def save(args, model, metadata, arch, mean_text, std_text, n_train, epochs, correct, n_test, before,
         provenance: dict[str, str]) -> None:
    """Writes the model as safetensors (atomically) with the metadata spikeconv reads."""
    tensors = {
        k: v.detach().float().contiguous()
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    out_metadata = {
        "normalize_mean": mean_text,
        "normalize_std": std_text,
        "num_classes": str(arch["num_classes"]),
        "shortcut": arch["shortcut"],
        "block": args.form,
        "source": (
            f"{args.checkpoint.name} ({metadata.get('source', 'no source metadata')}) turned into {args.form} blocks "
            f"and fine-tuned by spikeconv python/finetune_restructured.py --form {args.form}: {epochs} of {args.epochs} epoch(s) on the first "
            f"{n_train} CIFAR-10 training images ({args.train_batches}){grown_text(args)}{activation_text(args)}{teacher_text(args)}, random crop pad 4 + flip, SGD momentum "
            f"{args.momentum} lr {args.lr} cosine over {args.epochs} epoch(s), weight decay {args.weight_decay}, "
            f"batch {args.batch_size}, seed {args.seed}, {args.precision} training arithmetic, torch {torch.__version__}"
        ),
        "epochs_completed": str(epochs),
        "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "test_accuracy": f"{correct / n_test:.4f}",
        "test_correct": str(correct),
        "test_images": str(n_test),
        "test_accuracy_before_finetune": f"{before / n_test:.4f}",
        **provenance,
    }
    if "license" in metadata:
        license_text = metadata["license"]
        prefix = "derived from weights under: "
        out_metadata["license"] = license_text if license_text.startswith(prefix) else prefix + license_text
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    save_file(tensors, str(tmp), metadata=out_metadata)
    os.replace(tmp, args.out)


# The least a QCFS lambda may become. A grown block's branch starts dead (its ReLU sees only
# the closing BN's shift), its lambda starts near 0, and the clip's gradient can push it
# through 0: the ResNet-110 trained before this floor had two negative lambdas, which no IF
# threshold can be (spikeconv refuses the file).
LAMBDA_FLOOR = 1e-3


def keep_lambdas_positive(lambdas) -> None:
    """Clamps every trained lambda to at least ``LAMBDA_FLOOR`` (after each optimizer step)."""
    with torch.no_grad():
        for lam in lambdas:
            lam.clamp_(min=LAMBDA_FLOOR)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft-target loss, ``T^2 * KL(softmax(teacher / T) || softmax(student / T))``
    averaged over the batch (the T^2 keeps its gradient's scale independent of T)."""
    return F.kl_div(F.log_softmax(student / temperature, dim=1), F.log_softmax(teacher / temperature, dim=1),
                    reduction="batchmean", log_target=True) * temperature**2


def load_teacher(args, mean_text: str, std_text: str) -> torch.nn.Module:
    """The ``--teacher`` network in eval mode; it must read images normalized as the student does."""
    metadata, state = read_relu_checkpoint(args.teacher)
    if (metadata.get("normalize_mean"), metadata.get("normalize_std")) != (mean_text, std_text):
        raise SystemExit(f"{args.teacher}: normalization {metadata.get('normalize_mean')} / "
                         f"{metadata.get('normalize_std')} differs from the student's {mean_text} / {std_text}")
    try:
        teacher = resnet_cifar.from_state_dict(state, metadata.get("block", "standard"))
    except (KeyError, ValueError, RuntimeError) as e:
        raise SystemExit(f"{args.teacher}: not a CIFAR ResNet checkpoint ({e})")
    return teacher.eval()


def read_relu_checkpoint(path: Path) -> tuple[dict, dict]:
    """A checkpoint's metadata and tensors; a network with another activation than ReLU
    (a QCFS file, say) is a one-line error naming the file."""
    with safe_open(path, "pt") as f:
        metadata = dict(f.metadata() or {})
        state = {k: f.get_tensor(k) for k in f.keys()}
    if metadata.get("activation", "relu") != "relu":
        raise SystemExit(f"{path}: activation = {metadata['activation']!r}; expected a ReLU network")
    return metadata, state


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    metadata, state = read_relu_checkpoint(args.checkpoint)
    source_block = metadata.get("block", "standard")
    if source_block not in ("standard", args.form):
        raise SystemExit(f"{args.checkpoint}: block = {source_block!r}; expected a standard or {args.form} checkpoint")
    if not 0 <= args.distill_weight <= 1 or args.distill_temperature <= 0:
        raise SystemExit("--distill-weight must lie in [0, 1] and --distill-temperature be positive")
    if args.grow_to_depth and args.form != "restructured":
        raise SystemExit("--grow-to-depth needs --form restructured")
    if args.activation != "relu" and args.form == "preact":
        raise SystemExit("--activation qcfs needs --form restructured or standard")
    try:
        resnet_cifar.make_activation(args.activation, 1)
    except ValueError as e:
        raise SystemExit(f"--activation: {e}")
    parent_sha256 = sha256_of(args.checkpoint)
    mean_text = args.mean or metadata.get("normalize_mean")
    std_text = args.std or metadata.get("normalize_std")
    if not mean_text or not std_text:
        raise SystemExit(f"{args.checkpoint}: no normalize_mean/normalize_std metadata; pass --mean and --std")
    mean, std = cifar10.parse_triple(mean_text), cifar10.parse_triple(std_text)

    teacher = load_teacher(args, mean_text, std_text) if args.teacher is not None else None

    # The network as given: the baseline every later count is compared with.
    standard = resnet_cifar.from_state_dict(state, source_block)
    grown_layout = None
    if args.grow_to_depth:
        if (args.grow_to_depth - 2) % 6:
            raise SystemExit(f"--grow-to-depth {args.grow_to_depth}: a CIFAR ResNet's depth is 6n + 2")
        try:
            state, grown_layout = resnet_cifar.grow_state(state, (args.grow_to_depth - 2) // 6, args.grow_placement,
                                                          args.seed)
        except ValueError as e:
            raise SystemExit(f"--grow-to-depth: {e}")
    if args.form == "preact":
        model = resnet_cifar.from_state_dict(resnet_cifar.preact_state_from_standard(state), "preact")
    else:
        model = resnet_cifar.from_state_dict(state, args.form, args.activation)
    arch = resnet_cifar.infer_architecture(resnet_cifar.strip_module_prefix(state))
    depth = resnet_cifar.depth_of(arch["blocks_per_stage"], len(arch["widths"]))

    train_files = [args.data_dir / name for name in args.train_batches.split(",")]
    train_x, train_y = cifar10.read_batches(train_files, args.limit)
    test_x, test_y = cifar10.read_batches([args.data_dir / "test_batch.bin"], args.eval_limit)
    n_train, n_test = train_x.shape[0], test_x.shape[0]
    log(f"ResNet-{depth} ({arch}) from {args.checkpoint}; {n_train} training, {n_test} test images; "
        f"{args.threads} thread(s); activation {args.activation}")
    if grown_layout is not None:
        log("grown: per stage, the source block of each position (- = new): "
            + " | ".join(" ".join("-" if b is None else str(b) for b in stage) for stage in grown_layout))
    lambdas = {}
    if args.activation != "relu":
        relu_model = resnet_cifar.from_state_dict(state, args.form)
        calib = cifar10.normalize(train_x[: args.lambda_calibration_images], mean, std)
        lambdas = initialize_lambdas(model, relu_model, calib, args.lambda_init_percentile)
        log(f"lambdas from the {args.lambda_init_percentile} percentile on {calib.shape[0]} training images: "
            + ", ".join(f"{name} {value:.3f}" for name, value in list(lambdas.items())[:4]) + ", ...")

    steps_per_epoch = math.ceil(n_train / args.batch_size)
    total_steps = max(1, args.epochs * steps_per_epoch)
    # Thresholds (lambdas) are not decayed: weight decay would pull them towards 0 for no reason.
    lambda_params = [p for name, p in model.named_parameters() if name.endswith(".lambda") or name == "relu.lambda"]
    other_params = [p for name, p in model.named_parameters() if not (name.endswith(".lambda") or name == "relu.lambda")]
    groups = [{"params": other_params}]
    if lambda_params:
        groups.append({"params": lambda_params, "weight_decay": 0.0})
    optimizer = torch.optim.SGD(groups, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                                nesterov=False)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    epoch_eval = min(args.epoch_eval_limit, n_test)
    state_path = args.state or args.out.with_name(args.out.stem + ".state.pt")
    recipe = {k: str(v) for k, v in vars(args).items() if k in RECIPE_KEYS}
    if args.activation != "relu":
        # Before 2026-12-08 the straight-through gradient skipped levels 0 and L (inputs
        # below lambda / 2L or above lambda (L - 1/2) / L): such a run does not resume under
        # today's gradient.
        recipe["qcfs_gradient"] = resnet_cifar.QCFS_GRADIENT
        recipe["lambda_floor"] = str(LAMBDA_FLOOR)
    resume = cifar10.load_resume_state(state_path, recipe, args.restart, RECIPE_DEFAULTS)
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        before_standard, before, before_epoch_eval = resume["before"]
        log(f"resuming from {state_path}: epoch {resume['epoch'] + 1}, step {resume['step']}/{steps_per_epoch}")
    else:
        if args.form == "preact":
            # Running statistics of the re-arranged BatchNorms are a guess until recomputed.
            calib = cifar10.normalize(train_x[:2048], mean, std)
            resnet_cifar.recalibrate_batch_norm(model, calib.split(256))
        t0 = time.time()
        before_standard = evaluate(standard, test_x, test_y, mean, std)
        before = evaluate(model, test_x, test_y, mean, std)
        before_epoch_eval = evaluate(model, test_x[:epoch_eval], test_y[:epoch_eval], mean, std)
        log(f"test: {source_block} as given {before_standard}/{n_test}, {args.form} ({args.activation}) before "
            f"fine-tuning {before}/{n_test} "
            f"({time.time() - t0:.0f} s for both)")

    def save_state(epoch, step, order, seen, loss_sum, correct):
        state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_name(state_path.name + ".tmp")
        torch.save({
            "recipe": recipe, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": epoch, "step": step, "order": order,
            "generator": generator.get_state(), "sums": (seen, loss_sum, correct),
            "before": (before_standard, before, before_epoch_eval), "epoch_counts": epoch_counts,
        }, tmp)
        os.replace(tmp, state_path)

    provenance = {"parent": args.checkpoint.name, "parent_sha256": parent_sha256}
    if grown_layout is not None:
        provenance["grown_from_depth"] = str(resnet_cifar.depth_of(
            resnet_cifar.infer_architecture(resnet_cifar.strip_module_prefix(dict(standard.state_dict())))["blocks_per_stage"]))
        provenance["grown_layout"] = " | ".join(
            " ".join("-" if b is None else str(b) for b in stage) for stage in grown_layout)
    if teacher is not None:
        provenance["teacher"] = args.teacher.name
        provenance["teacher_sha256"] = sha256_of(args.teacher)
        provenance["distillation"] = f"weight {args.distill_weight}, temperature {args.distill_temperature}"
    if args.activation != "relu":
        kind, levels = args.activation.split(":")[:2]
        provenance["activation"] = kind
        provenance["qcfs_levels"] = levels
        provenance["qcfs_lambda"] = "channel" if args.activation.endswith(":channel") else "layer"
        provenance["qcfs_gradient"] = resnet_cifar.QCFS_GRADIENT
        provenance["qcfs_lambda_floor"] = str(LAMBDA_FLOOR)
    epoch_counts = list(resume.get("epoch_counts", [])) if resume is not None else []

    first_epoch = resume["epoch"] if resume is not None else 0
    for epoch in range(first_epoch, args.epochs):
        model.train()
        start = time.time()
        if resume is not None:
            # The random stream continues where the saved run left it.
            generator.set_state(resume["generator"])
        if resume is not None and resume["order"] is not None:
            # Continue the interrupted epoch: same image order, same augmentation from here on.
            order, first_step = resume["order"], resume["step"]
            seen, loss_sum, correct = resume["sums"]
        else:
            order, first_step = torch.randperm(n_train, generator=generator), 0
            seen = loss_sum = correct = 0
        resume = None
        for step in range(first_step, steps_per_epoch):
            index = order[step * args.batch_size : (step + 1) * args.batch_size]
            x = cifar10.normalize(cifar10.augment(train_x[index], generator), mean, std)
            y = train_y[index]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                logits = model(x)
                if teacher is not None:
                    with torch.no_grad():
                        teacher_logits = teacher(x)
            loss = F.cross_entropy(logits.float(), y)
            if teacher is not None:
                loss = (1 - args.distill_weight) * loss + args.distill_weight * distillation_loss(
                    logits.float(), teacher_logits.float(), args.distill_temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            keep_lambdas_positive(lambda_params)
            scheduler.step()
            seen += y.shape[0]
            loss_sum += float(loss.detach()) * y.shape[0]
            correct += int((logits.argmax(1) == y).sum())
            if (step + 1) % args.save_every == 0 and step + 1 < steps_per_epoch:
                save_state(epoch, step + 1, order, seen, loss_sum, correct)
            if step % 20 == 0:
                log(f"epoch {epoch + 1}/{args.epochs} step {step}/{steps_per_epoch} loss {loss_sum / seen:.4f} "
                    f"train acc {correct / seen:.4f} lr {scheduler.get_last_lr()[0]:.5f}")
        train_time = time.time() - start
        if epoch + 1 < args.epochs:
            # A usable checkpoint after every epoch, checked on a subset: a run cut short still
            # leaves its latest model (metadata says how many epochs and test images).
            test_correct = evaluate(model, test_x[:epoch_eval], test_y[:epoch_eval], mean, std)
            epoch_counts.append(f"{test_correct}/{epoch_eval}")
            save_state(epoch + 1, 0, None, 0, 0.0, 0)
            save(args, model, metadata, arch, mean_text, std_text, n_train, epoch + 1, test_correct, epoch_eval,
                 before_epoch_eval, {**provenance, "epoch_test_counts": ", ".join(epoch_counts)})
            log(f"epoch {epoch + 1}/{args.epochs} done in {train_time:.0f} s: loss {loss_sum / seen:.4f} "
                f"train acc {correct / seen:.4f}; test {test_correct}/{epoch_eval}; saved {args.out}")
        else:
            save_state(epoch + 1, 0, None, 0, 0.0, 0)
            log(f"epoch {epoch + 1}/{args.epochs} done in {train_time:.0f} s: loss {loss_sum / seen:.4f} "
                f"train acc {correct / seen:.4f}")

    final = evaluate(model, test_x, test_y, mean, std)
    epoch_counts_text = ", ".join(epoch_counts + [f"{final}/{n_test}"])
    save(args, model, metadata, arch, mean_text, std_text, n_train, args.epochs, final, n_test, before,
         {**provenance, "epoch_test_counts": epoch_counts_text})
    log(f"test: {args.form} after fine-tuning {final}/{n_test} ({final / n_test:.2%}); "
        f"the {source_block} network as given was {before_standard}/{n_test}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
