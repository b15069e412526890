#!/usr/bin/env python3
"""Fine-tune (or train from scratch) a mnaszoo model on an image folder or on handwritten digits.

Two data sources, no download needed for either:

* ``--data digits`` (default): scikit-learn's bundled handwritten digits, 1,797 real 8x8 grey
  scans of the digits 0-9 (``pip install "mnaszoo[examples]"``, or ``scikit-learn``). Each scan
  is upscaled to ``--input-size`` (64 by default) RGB with mnaszoo's own evaluation transform,
  so ``mnaszoo predict`` on an 8x8 PNG of a digit sees exactly what training saw.
* ``--data PATH``: an ImageFolder tree (one sub-folder per class). With ``train/`` and ``val/``
  sub-folders they are used as the split; otherwise ``--val-fraction`` of every class is held
  out.

Everything goes into ``--output`` (default ``runs/finetune``)::

    model.safetensors, config.json   the model (save_pretrained: labels and preprocessing too)
    classes.txt                      one class name per line, in class-index order
    training_state.pt                model, optimizer, scheduler, AMP scaler, epoch, RNG states
    metrics.json                     final and best accuracy, per-epoch history, timings
    samples/                         a few validation digits as PNG files (digits only)

The checkpoint and training state are rewritten atomically every ``--save-every`` epochs, so
an interrupted run continues with ``--resume`` (bit-for-bit, on the same machine and world
size). The result classifies images with the ``mnaszoo`` command::

    mnaszoo predict runs/finetune/samples/*.png --checkpoint runs/finetune \\
        --classes runs/finetune/classes.txt --topk 3

Distributed: the same script runs under ``torchrun --nproc_per_node=N`` (gloo on CPU, NCCL on
GPUs). Each process takes its share of every batch (``DistributedSampler``); gradients are
averaged by ``DistributedDataParallel``; BatchNorm statistics are synchronised every step with
``--sync-bn`` (GPUs only) or averaged across processes at the end of every epoch otherwise.
Rank 0 alone downloads pretrained weights (the others wait at a barrier and read its cache),
logs, and writes files. ``--batch-size`` is per process.

Examples::

    # from scratch on digits: 99-100% validation accuracy in under 4 minutes on 2 CPU cores
    python examples/finetune.py --model mnasnet_small --epochs 30

    # fine-tune ImageNet weights on your folder, classifier at 10x the learning rate
    python examples/finetune.py --data ~/flowers --model mnasnet_b1 --pretrained \\
        --lr 1e-3 --head-lr-mult 10 --epochs 10 --output runs/flowers

    # two processes on one machine
    torchrun --nproc_per_node=2 examples/finetune.py --model mnasnet_small --epochs 30
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, TensorDataset

import mnaszoo
from mnaszoo.data.transforms import make_transform
from mnaszoo.tasks.finetune import (
    FINETUNE_BN_MOMENTUM,
    count_parameters,
    freeze,
    freeze_bn,
    param_groups,
    set_bn_momentum,
)
from mnaszoo.weights.manifest import LocalSource, Preprocessing, WeightsRecord

STATE_NAME = "training_state.pt"
STATE_FORMAT = 1
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
DIGITS_INPUT_SIZE = 64

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


# --------------------------------------------------------------------------- data


@dataclass
class Data:
    """A train/validation split with what the saved model needs to reproduce its inputs."""

    name: str
    train: Subset[Any] | ImageFiles
    val: Subset[Any] | ImageFiles
    classes: list[str]
    preprocessing: Preprocessing
    augment: Augment | None = None  # applied to whole training batches (digits)
    samples: list[tuple[np.ndarray[Any, Any], int]] = field(default_factory=list)


def _shuffled_by_class(labels: Sequence[int], seed: int, limit: int | None) -> dict[int, list[int]]:
    generator = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(index)
    per_class = None if limit is None else max(2, limit // len(by_class))
    return {
        label: [items[i] for i in torch.randperm(len(items), generator=generator).tolist()][
            :per_class
        ]
        for label, items in sorted(by_class.items())
    }


def subsample(labels: Sequence[int], limit: int | None, seed: int) -> list[int]:
    """Indices of about ``limit`` items spread evenly over the classes (all if ``None``)."""
    return sorted(i for items in _shuffled_by_class(labels, seed, limit).values() for i in items)


def stratified_split(
    labels: Sequence[int], val_fraction: float, seed: int, limit: int | None = None
) -> tuple[list[int], list[int]]:
    """Seeded per-class split: about ``val_fraction`` of every class goes to validation.

    ``limit`` first keeps about that many items, spread evenly over the classes.
    """
    train: list[int] = []
    val: list[int] = []
    for items in _shuffled_by_class(labels, seed, limit).values():
        count = min(len(items) - 1, max(1, round(len(items) * val_fraction)))
        val += items[:count]
        train += items[count:]
    return sorted(train), sorted(val)


def digits_preprocessing(input_size: int) -> Preprocessing:
    """8x8 scans upscaled (bilinear) to ``input_size``; grey in [0, 1] mapped to [-1, 1]."""
    return Preprocessing(
        input_size=input_size,
        interpolation="bilinear",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        resize_size=input_size,
    )


def random_affine(
    batch: torch.Tensor,
    generator: torch.Generator,
    *,
    degrees: float = 10.0,
    scale: float = 0.1,
    shift: float = 0.08,
    fill: float = -1.0,
) -> torch.Tensor:
    """Light augmentation for digits: rotate by up to ``degrees``, zoom by up to ``1 +- scale``
    and shift by up to ``shift`` of the image side; no flips (a mirrored 2 is no 2).

    Uncovered pixels get ``fill``: the normalised black background (-1 with mean = std = 0.5).
    A random resized crop, the usual ImageNet augmentation, would cut strokes off: the scans
    fill their 8x8 frame.
    """
    n = batch.shape[0]
    u = torch.rand(n, 4, generator=generator) * 2 - 1
    angle = u[:, 0] * math.radians(degrees)
    zoom = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [
            torch.stack([cos, -sin, u[:, 2] * 2 * shift], dim=1),
            torch.stack([sin, cos, u[:, 3] * 2 * shift], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    moved = F.grid_sample(batch - fill, grid, padding_mode="zeros", align_corners=False)
    return moved + fill


def load_digits_data(
    input_size: int, val_fraction: float, seed: int, limit: int | None = None
) -> Data:
    """scikit-learn's digits, upscaled with mnaszoo's transform, split per class."""
    try:
        load_digits = importlib.import_module("sklearn.datasets").load_digits
    except ImportError as error:
        raise SystemExit(
            "--data digits needs scikit-learn: pip install 'mnaszoo[examples]'"
            " (or pip install scikit-learn)."
        ) from error
    digits = load_digits()
    # Scans hold 0..16 (white ink on black); scale to 8-bit grey.
    pixels = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    labels = [int(t) for t in digits.target]
    preprocessing = digits_preprocessing(input_size)
    transform = make_transform(preprocessing)
    images = torch.stack([transform(Image.fromarray(p, mode="L")) for p in pixels])
    targets = torch.tensor(labels)
    train, val = stratified_split(labels, val_fraction, seed, limit)
    dataset = TensorDataset(images, targets)
    return Data(
        name="digits",
        train=Subset(dataset, train),
        val=Subset(dataset, val),
        classes=[str(d) for d in range(10)],
        preprocessing=preprocessing,
        augment=random_affine,
        samples=[(pixels[i], labels[i]) for i in val],
    )


class ImageFiles(Dataset[tuple[torch.Tensor, int]]):
    """``(transform(image), label)`` for a list of ``(path, label)``."""

    def __init__(
        self, items: Sequence[tuple[Path, int]], transform: Callable[[Any], torch.Tensor]
    ) -> None:
        self.items = list(items)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        return self.transform(path), label


def class_folders(root: Path) -> list[str]:
    """The class sub-folders of ``root``, sorted (their order is the class index)."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_folder(root: Path, classes: Sequence[str]) -> list[tuple[Path, int]]:
    """Images under ``root/<class>/`` (recursively), labelled by their index in ``classes``."""
    index = {name: i for i, name in enumerate(classes)}
    extra = sorted(name for name in class_folders(root) if name not in index)
    if extra:
        raise SystemExit(f"{root} has class folders not in the training set: {extra}.")
    # mnaszoo's scanner: each folder once through symlinks (a loop is an error), bounded.
    try:
        found = mnaszoo.scan_class_folders(root, extensions=IMAGE_EXTENSIONS)
    except mnaszoo.MnaszooError as error:
        raise SystemExit(str(error)) from error
    items = [
        (Path(path), index[name])
        for name, paths in zip(found.classes, found.files, strict=True)
        if name in index
        for path in paths
    ]
    if not items:
        raise SystemExit(f"No images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {root}.")
    return items


def load_folder_data(
    root: Path,
    preprocessing: Preprocessing,
    val_fraction: float,
    seed: int,
    limit: int | None = None,
) -> Data:
    """An ImageFolder tree: ``root/train`` + ``root/val`` if both exist, else a per-class split.

    Training images get mnaszoo's training transform (random resized crop and flip).
    """
    if not root.is_dir():
        raise SystemExit(f"--data {root}: not a directory (nor 'digits').")
    train_tf = make_transform(preprocessing, train=True)
    eval_tf = make_transform(preprocessing)
    if (root / "train").is_dir() and (root / "val").is_dir():
        classes = class_folders(root / "train")
        train_items = scan_folder(root / "train", classes)
        val_items = scan_folder(root / "val", classes)
        keep = subsample([y for _, y in train_items], limit, seed)
        train_items = [train_items[i] for i in keep]
    else:
        classes = class_folders(root)
        items = scan_folder(root, classes)
        train_idx, val_idx = stratified_split([y for _, y in items], val_fraction, seed, limit)
        train_items = [items[i] for i in train_idx]
        val_items = [items[i] for i in val_idx]
    if len(classes) < 2:
        raise SystemExit(f"{root} needs at least two class folders, found {classes}.")
    return Data(
        name=str(root),
        train=ImageFiles(train_items, train_tf),
        val=ImageFiles(val_items, eval_tf),
        classes=classes,
        preprocessing=preprocessing,
    )


# --------------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job (world size 1 without torchrun)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool  # this script initialised the process group (and tears it down)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over processes."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world_size > 1:
            dist.all_reduce(tensor)
        return [float(v) for v in tensor.tolist()]


def setup_distributed(device: str) -> Distributed:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) and join the process group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available.")
    target = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(target)
    owns = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
        owns = True
    return Distributed(rank, world_size, local_rank, target, owns)


def average_bn_statistics(model: nn.Module, world_size: int) -> None:
    """Average BatchNorm running statistics over processes (each saw only its own batches)."""
    if world_size < 2:
        return
    for layer in model.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.track_running_stats:
            for buffer in (layer.running_mean, layer.running_var):
                if buffer is not None:
                    dist.all_reduce(buffer)
                    buffer.div_(world_size)


# --------------------------------------------------------------------------- state


def rng_state(augment_generator: torch.Generator) -> dict[str, Any]:
    """Every random state the loop draws from (weights-only-loadable types)."""
    np_state = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "augment": augment_generator.get_state(),
    }


def set_rng_state(state: dict[str, Any], augment_generator: torch.Generator) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    augment_generator.set_state(state["augment"])


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` beside the target, then rename: never a half-written file."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(obj, temp)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(temp, path)


def finetuned_record(
    model_name: str, classes: Sequence[str], preprocessing: Preprocessing, output: Path
) -> WeightsRecord:
    """What ``save_pretrained`` stores with the model: labels and the evaluation recipe."""
    return WeightsRecord(
        id=f"{model_name}.finetuned",
        source=LocalSource(str(output)),
        sha256=None,
        sha256_prefix=None,
        size=None,
        layout="mnaszoo",
        num_classes=len(classes),
        labels=tuple(classes),
        preprocessing=preprocessing,
        metrics=(),
        license="",
        num_params=0,
        publisher="examples/finetune.py",
        notes="",
    )


# --------------------------------------------------------------------------- training


@dataclass
class Result:
    """What :func:`run` returns: the trained (unwrapped) model and the metrics it wrote."""

    model: mnaszoo.MnasNet
    metrics: dict[str, Any]


def cosine_with_warmup(total_steps: int, warmup_steps: int, min_ratio: float) -> Any:
    """LR multiplier: linear warmup from 0, then cosine decay to ``min_ratio``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def amp_settings(choice: str, device: torch.device) -> tuple[bool, torch.dtype]:
    """``--amp``: ``auto`` uses bfloat16 (or float16) autocast on GPUs and nothing on CPUs,
    where autocast rarely speeds up small convolutional networks."""
    if choice == "off" or (choice == "auto" and device.type != "cuda"):
        return False, torch.float32
    if choice == "fp16":
        return True, torch.float16
    if choice == "bf16" or torch.cuda.is_bf16_supported():
        return True, torch.bfloat16
    return True, torch.float16


def evaluate(
    model: nn.Module,
    loader: DataLoader[tuple[torch.Tensor, int]],
    env: Distributed,
    autocast: Callable[[], contextlib.AbstractContextManager[Any]],
) -> tuple[float, float]:
    """Validation loss and accuracy over every process's shard."""
    model.eval()
    loss_sum = correct = count = 0.0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(env.device), labels.to(env.device)
            with autocast():
                logits = model(images)
            loss_sum += float(F.cross_entropy(logits.float(), labels, reduction="sum"))
            correct += float((logits.argmax(1) == labels).sum())
            count += labels.numel()
    loss_sum, correct, count = env.sum([loss_sum, correct, count])
    return loss_sum / max(count, 1), correct / max(count, 1)


def weights_record(model: str, pretrained: bool | str) -> WeightsRecord | None:
    """The published weights ``--pretrained`` names (a tag or a full id), or ``None``."""
    if pretrained is False:
        return None
    if pretrained is True:
        return mnaszoo.get_weights(model)
    return mnaszoo.get_weights(pretrained if "." in pretrained else f"{model}.{pretrained}")


def parse_stage(value: str) -> int | str:
    return int(value) if value.lstrip("-").isdigit() else value


def prepare_output(args: argparse.Namespace, env: Distributed) -> Path | None:
    """The training-state file to resume from, after checking the output directory."""
    output = Path(args.output)
    state = Path(args.resume) if args.resume not in (None, "auto") else output / STATE_NAME
    if args.resume is not None:
        if not state.is_file():
            raise SystemExit(f"--resume: {state} does not exist.")
        return state
    if not args.overwrite and (output / STATE_NAME).exists():
        raise SystemExit(
            f"{output} already holds a training run: pass --resume to continue it, --overwrite"
            " to start again, or another --output."
        )
    return None


def log(env: Distributed, message: str) -> None:
    if env.main:
        print(message, file=sys.stderr, flush=True)


def progress(iterable: Any, env: Distributed, args: argparse.Namespace, **kwargs: Any) -> Any:
    if not env.main or args.no_progress:
        return iterable
    tqdm = importlib.import_module("tqdm.auto").tqdm
    # disable=None: bars only on a terminal, so logs and CI output stay clean.
    return tqdm(iterable, disable=None, leave=False, dynamic_ncols=True, **kwargs)


def load_data(args: argparse.Namespace, model_preprocessing: Preprocessing) -> Data:
    if args.data == "digits":
        return load_digits_data(
            args.input_size or DIGITS_INPUT_SIZE, args.val_fraction, args.seed, args.limit
        )
    preprocessing = model_preprocessing
    if args.input_size is not None:
        preprocessing = make_transform(preprocessing, input_size=args.input_size).preprocessing
    return load_folder_data(
        Path(args.data).expanduser(), preprocessing, args.val_fraction, args.seed, args.limit
    )


def write_samples(data: Data, output: Path, count: int) -> None:
    """A few validation digits as 8x8 PNG files, to try ``mnaszoo predict`` on."""
    if not data.samples or count <= 0:
        return
    folder = output / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    for i, (pixels, label) in enumerate(data.samples[:count]):
        Image.fromarray(pixels, mode="L").save(folder / f"val{i:02d}_label{label}.png")


def run(args: argparse.Namespace, *, stop_after_epoch: int | None = None) -> Result:
    """Train as ``args`` say; ``stop_after_epoch`` simulates an interruption (for tests)."""
    start_wall = time.perf_counter()
    env = setup_distributed(args.device)
    try:
        return _run(args, env, start_wall, stop_after_epoch)
    finally:
        if env.owns_group:
            dist.destroy_process_group()


def _run(
    args: argparse.Namespace, env: Distributed, start_wall: float, stop_after_epoch: int | None
) -> Result:
    output = Path(args.output)
    resume_from = prepare_output(args, env)
    if env.main:
        output.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)

    pretrained: bool | str = args.pretrained if args.pretrained is not None else False
    record = weights_record(args.model, pretrained)
    data = load_data(args, make_transform(record).preprocessing)
    num_classes = len(data.classes)
    # Pretrained weights: local rank 0 downloads (and verifies) them while the other processes
    # of its machine wait at the barrier, then read its cache. DDP later broadcasts rank 0's
    # values anyway, so every process starts from identical weights.
    downloader = env.local_rank == 0
    if not downloader:
        env.barrier()
    model = mnaszoo.create(
        args.model,
        pretrained=pretrained,
        num_classes=num_classes,
        drop_rate=args.drop_rate,
        drop_path_rate=args.drop_path_rate,
        local_files_only=bool(pretrained) and not downloader,
    )
    if downloader:
        env.barrier()
    fresh_head = record is None or record.num_classes != num_classes
    if fresh_head and args.head_init == "zero" and isinstance(model.classifier, nn.Linear):
        # The reference initialisation, uniform(+-1/sqrt(num_classes)), gives logits with a
        # standard deviation near 4 for 10 classes (initial loss ~5 instead of ln 10 = 2.3);
        # starting from zero logits wastes no steps unlearning that.
        nn.init.zeros_(model.classifier.weight)
        nn.init.zeros_(model.classifier.bias)
    model.weights_info = finetuned_record(args.model, data.classes, data.preprocessing, output)
    # Every process built the same initial weights from the same seed; from here on, dropout
    # and drop-path draw different masks in each.
    torch.manual_seed(args.seed * 1000 + 1 + env.rank)
    set_bn_momentum(model, args.bn_momentum)
    if args.grad_checkpointing:
        model.set_grad_checkpointing()
    model.to(env.device)
    if args.sync_bn:
        if env.device.type == "cpu":
            raise SystemExit(
                "--sync-bn needs GPUs (PyTorch's SyncBatchNorm has no CPU kernel); on CPU the"
                " BatchNorm statistics are averaged over processes at the end of every epoch."
            )
        model = cast(
            mnaszoo.MnasNet,
            nn.SyncBatchNorm.convert_sync_batchnorm(model),  # type: ignore[no-untyped-call]
        )
    if args.freeze is not None:
        freeze(model, parse_stage(args.freeze))
    if args.freeze_bn:
        freeze_bn(model)
    trainable, total = count_parameters(model)

    groups = param_groups(
        model,
        lr=args.lr,
        weight_decay=args.weight_decay,
        head_lr_mult=args.head_lr_mult,
        layer_decay=args.layer_decay,
    )
    optimizer: torch.optim.Optimizer
    if args.optimizer == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=args.lr)
    else:
        optimizer = torch.optim.SGD(groups, lr=args.lr, momentum=0.9, nesterov=True)

    train_sampler: DistributedSampler[tuple[torch.Tensor, int]] = DistributedSampler(
        data.train, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=args.seed
    )
    pin = env.device.type == "cuda"
    train_loader = DataLoader(
        data.train,
        batch_size=args.batch_size,
        sampler=train_sampler,
        num_workers=args.workers,
        pin_memory=pin,
        drop_last=len(data.train) // env.world_size >= 2 * args.batch_size,
        persistent_workers=args.workers > 0,
    )
    val_shard = Subset(data.val, range(env.rank, len(data.val), env.world_size))
    val_loader = DataLoader(
        val_shard, batch_size=args.batch_size * 2, num_workers=args.workers, pin_memory=pin
    )
    steps_per_epoch = len(train_loader)
    total_steps = args.epochs * steps_per_epoch
    warmup = min(round(args.warmup_epochs * steps_per_epoch), max(total_steps - 1, 0))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_with_warmup(total_steps, warmup, args.min_lr_ratio)
    )
    use_amp, amp_dtype = amp_settings(args.amp, env.device)
    scaler = torch.amp.GradScaler(env.device.type, enabled=use_amp and amp_dtype == torch.float16)

    def autocast() -> contextlib.AbstractContextManager[Any]:
        return torch.autocast(env.device.type, dtype=amp_dtype, enabled=use_amp)

    augment_generator = torch.Generator().manual_seed(args.seed * 1000 + env.rank)
    start_epoch = 0
    history: list[dict[str, float]] = []
    best = {"val_acc": -1.0, "epoch": -1.0}
    train_seconds = 0.0
    if resume_from is not None:
        state = torch.load(resume_from, map_location="cpu", weights_only=True)
        if state.get("format") != STATE_FORMAT:
            raise SystemExit(f"{resume_from} is not a training state written by this script.")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        start_epoch = int(state["epoch"])
        history = list(state["history"])
        best = dict(state["best"])
        train_seconds = float(state["train_seconds"])
        if len(state["rng"]) == env.world_size:
            set_rng_state(state["rng"][env.rank], augment_generator)
        else:
            log(env, "resume: another number of processes; random streams are reseeded.")
            torch.manual_seed(args.seed + start_epoch)
        log(env, f"resumed from {resume_from} after epoch {start_epoch}")

    net: nn.Module = model
    if env.world_size > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[env.device.index] if env.device.type == "cuda" else None
        )
    log(
        env,
        f"{args.model}: {trainable:,} of {total:,} parameters trainable; {data.name}:"
        f" {len(data.train)} train / {len(data.val)} val images, {num_classes} classes,"
        f" {data.preprocessing.input_size}px; {env.world_size} process(es) on {env.device.type},"
        f" {steps_per_epoch} steps/epoch, amp {'off' if not use_amp else amp_dtype}",
    )
    if env.main and start_epoch == 0:
        atomic_write_text(output / "classes.txt", "\n".join(data.classes) + "\n")
        write_samples(data, output, args.samples)

    def save(epoch: int) -> None:
        # Every rank contributes its random state (a collective call); rank 0 writes.
        states: list[Any] = [None] * env.world_size
        mine = rng_state(augment_generator)
        if env.world_size > 1:
            dist.all_gather_object(states, mine)
        else:
            states = [mine]
        if env.main:
            mnaszoo.save_pretrained(model, output, labels=data.classes, overwrite=True)
            atomic_save(
                {
                    "format": STATE_FORMAT,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": states,
                    "history": history,
                    "best": best,
                    "train_seconds": train_seconds,
                    "world_size": env.world_size,
                    "classes": data.classes,
                },
                output / STATE_NAME,
            )
        env.barrier()

    for epoch in range(start_epoch, args.epochs):
        epoch_start = time.perf_counter()
        train_sampler.set_epoch(epoch)
        net.train()
        loss_sum = correct = count = 0.0
        bar = progress(train_loader, env, args, desc=f"epoch {epoch + 1}/{args.epochs}")
        for images, labels in bar:
            if data.augment is not None:
                images = data.augment(images, augment_generator)
            images = images.to(env.device, non_blocking=True)
            labels = labels.to(env.device, non_blocking=True)
            with autocast():
                logits = net(images)
                loss = F.cross_entropy(logits, labels, label_smoothing=args.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
            if args.clip_grad:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += float(loss.detach()) * labels.numel()
            correct += float((logits.detach().argmax(1) == labels).sum())
            count += labels.numel()
            if bar is not train_loader:
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        average_bn_statistics(model, env.world_size)
        loss_sum, correct, count = env.sum([loss_sum, correct, count])
        train_seconds += time.perf_counter() - epoch_start
        val_loss, val_acc = evaluate(model, val_loader, env, autocast)
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(count, 1),
            "train_acc": correct / max(count, 1),
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": float(optimizer.param_groups[0]["lr"]),
            "elapsed_s": train_seconds,
        }
        history.append(row)
        if val_acc > best["val_acc"]:
            best = {"val_acc": val_acc, "epoch": float(epoch + 1)}
        log(
            env,
            f"epoch {epoch + 1:3d}/{args.epochs}  train loss {row['train_loss']:.4f}"
            f" acc {100 * row['train_acc']:6.2f}%  val loss {val_loss:.4f}"
            f" acc {100 * val_acc:6.2f}%  lr {row['lr']:.2e}  {train_seconds:7.1f}s",
        )
        last = epoch + 1 == args.epochs or epoch + 1 == stop_after_epoch
        if last or (epoch + 1) % args.save_every == 0:
            save(epoch + 1)
        if epoch + 1 == stop_after_epoch:
            break

    final = history[-1] if history else {}
    metrics: dict[str, Any] = {
        "model": args.model,
        "pretrained": pretrained,
        "data": data.name,
        "classes": len(data.classes),
        "train_images": len(data.train),
        "val_images": len(data.val),
        "input_size": data.preprocessing.input_size,
        "epochs": len(history),
        "final_val_acc": final.get("val_acc"),
        "final_val_loss": final.get("val_loss"),
        "best_val_acc": best["val_acc"],
        "best_epoch": int(best["epoch"]),
        "train_seconds": round(train_seconds, 2),
        "wall_seconds": round(time.perf_counter() - start_wall, 2),
        "world_size": env.world_size,
        "device": str(env.device.type),
        "threads_per_process": torch.get_num_threads(),
        "trainable_params": trainable,
        "params": total,
        "checkpoint": str(output),
        "history": history,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    if env.main:
        atomic_write_text(output / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return Result(model=model, metrics=metrics)


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Fine-tune or train a mnaszoo model on an image folder or on scikit-learn's"
        " handwritten digits; runs under torchrun for several processes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        default="digits",
        help="'digits' (scikit-learn's 8x8 scans) or an ImageFolder directory",
    )
    data.add_argument(
        "--input-size",
        type=int,
        default=None,
        help=f"image side; default {DIGITS_INPUT_SIZE} for digits, else the weights' recipe",
    )
    data.add_argument("--val-fraction", type=float, default=0.2, help="held out per class")
    data.add_argument("--limit", type=int, default=None, help="use only N images (per class)")
    data.add_argument("--workers", type=int, default=0, help="data-loading processes")
    data.add_argument("--samples", type=int, default=8, help="digits: val PNGs to write")

    model = parser.add_argument_group("model")
    model.add_argument("--model", default="mnasnet_small", choices=mnaszoo.list_models())
    model.add_argument(
        "--pretrained",
        nargs="?",
        const=True,
        default=None,
        metavar="TAG",
        help="start from published ImageNet weights (optionally a tag such as tv_in1k)",
    )
    model.add_argument(
        "--head-init",
        choices=("zero", "default"),
        default="zero",
        help="a fresh classifier starts at zero, or with the reference initialisation",
    )
    model.add_argument("--drop-rate", type=float, default=None, help="dropout; default spec's")
    model.add_argument("--drop-path-rate", type=float, default=0.0)
    model.add_argument(
        "--bn-momentum",
        type=float,
        default=FINETUNE_BN_MOMENTUM,
        help="BatchNorm momentum (PyTorch convention)",
    )
    model.add_argument(
        "--freeze", default=None, metavar="STAGE", help="freeze up to a stage: 0..N, stem, head"
    )
    model.add_argument("--freeze-bn", action="store_true", help="freeze every BatchNorm layer")
    model.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm (GPUs)")
    model.add_argument(
        "--grad-checkpointing", action="store_true", help="recompute stages to save memory"
    )

    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, default=30)
    opt.add_argument("--batch-size", type=int, default=32, help="per process")
    opt.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    opt.add_argument(
        "--lr", type=float, default=None, help="default 4e-3 from scratch, 1e-3 with --pretrained"
    )
    opt.add_argument("--weight-decay", type=float, default=0.05)
    opt.add_argument("--head-lr-mult", type=float, default=1.0)
    opt.add_argument("--layer-decay", type=float, default=None)
    opt.add_argument("--warmup-epochs", type=float, default=1.0)
    opt.add_argument("--min-lr-ratio", type=float, default=0.01)
    opt.add_argument("--label-smoothing", type=float, default=0.1)
    opt.add_argument("--clip-grad", type=float, default=None, help="max gradient norm")
    opt.add_argument("--amp", choices=("auto", "off", "fp16", "bf16"), default="auto")
    opt.add_argument("--seed", type=int, default=0)

    run_group = parser.add_argument_group("run")
    run_group.add_argument("--output", default="runs/finetune", help="checkpoint directory")
    run_group.add_argument("--save-every", type=int, default=1, help="epochs between saves")
    run_group.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        metavar="STATE",
        help=f"continue from --output's {STATE_NAME} (or the file given)",
    )
    run_group.add_argument("--overwrite", action="store_true", help="replace a previous run")
    run_group.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    run_group.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "save_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0.0 < args.val_fraction < 1.0:
        parser.error("--val-fraction must lie strictly between 0 and 1")
    if args.limit is not None and args.limit < 20:
        parser.error("--limit must be at least 20")
    if args.lr is None:
        args.lr = 1e-3 if args.pretrained is not None else 4e-3
    return args


def main(argv: Sequence[str] | None = None) -> Result:
    args = parse_args(argv)
    try:
        result = run(args)
    except mnaszoo.MnaszooError as error:  # a bad --freeze, unknown weights, ...
        raise SystemExit(f"error: {error}") from error
    if int(os.environ.get("RANK", "0")) == 0:
        summary = {k: v for k, v in result.metrics.items() if k not in ("history", "args")}
        print(json.dumps(summary, indent=2))
    return result


if __name__ == "__main__":
    main()
