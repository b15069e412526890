"""A cheap accuracy proxy for architecture search: brief training from scratch, held-out score.

MnasNet trained each sampled child model for five epochs on a proxy task; on a laptop the
equivalent is a few epochs on a small real dataset. :func:`load_digits_proxy` provides one
without a download (scikit-learn's 1,797 handwritten 8x8 digit scans, upscaled with mnaszoo's own
transform as ``examples/finetune.py`` does), and :class:`ProxyTrainer` turns any model into a
validation accuracy in seconds on a CPU.

The signal is a ranking signal, not an ImageNet accuracy estimate: it separates clearly weaker
architectures from reasonable ones at the same budget, and it is deterministic given its seed so
that a search can be resumed and compared.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ..._validate import check_bool, check_choice, check_float, check_int
from ...deploy._timing import intra_op_threads
from ...errors import ArgumentTypeError, InvalidArgumentError, MnaszooError
from .schedule import OneCycle, planned_steps

__all__ = ["ProxyTrainer", "TensorPair", "load_digits_proxy"]

TensorPair = tuple[torch.Tensor, torch.Tensor]
"""``(images[N, C, H, W] float, labels[N] int64)``."""

_OPTIMIZERS = ("adamw", "sgd")


def _check_pair(name: str, pair: object) -> TensorPair:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ArgumentTypeError(
            f"{name} must be a pair (images, labels) of tensors, got {type(pair).__name__}."
        )
    images, labels = pair
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise ArgumentTypeError(
            f"{name} must hold two torch tensors (images, labels), got"
            f" ({type(images).__name__}, {type(labels).__name__})."
        )
    if images.dim() != 4 or not images.is_floating_point():
        raise InvalidArgumentError(
            f"{name} images must be a float tensor of shape (N, C, H, W), got"
            f" {images.dtype} of shape {tuple(images.shape)}."
        )
    if labels.dim() != 1 or labels.dtype != torch.int64:
        raise InvalidArgumentError(
            f"{name} labels must be an int64 tensor of shape (N,), got {labels.dtype} of shape"
            f" {tuple(labels.shape)}; use labels.long()."
        )
    if images.shape[0] != labels.shape[0] or images.shape[0] == 0:
        raise InvalidArgumentError(
            f"{name} needs as many labels as images (at least one), got {images.shape[0]} images"
            f" and {labels.shape[0]} labels."
        )
    if int(labels.min()) < 0:
        raise InvalidArgumentError(f"{name} labels must be >= 0, got {int(labels.min())}.")
    return images, labels


def _reinitialize(model: nn.Module) -> None:
    """Fresh weights and BatchNorm statistics, as :func:`mnaszoo.build` would give."""
    from ...models.mnasnet import init_weights

    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    # mnaszoo's He fan-out initialisation for convolutions, unit BatchNorm, uniform classifier.
    init_weights(model)


def _batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int) -> None:
    """Re-estimate every BatchNorm's running statistics over ``images`` (a plain average over
    batches of ``batch_size``; a last batch of one image is left out): a short run cannot settle
    the running averages at MnasNet's momentum of 0.01, and stale statistics leave evaluation at
    chance level. The model is left in training mode."""
    layers = _batchnorms(model)
    if not layers:
        return
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over the whole pass
    model.train()
    device = next(model.parameters()).device
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size]
        if batch.shape[0] > 1:
            model(batch.to(device))
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum


class ProxyTrainer:
    """Train a model from scratch for a short budget and return its validation accuracy.

    Calling the trainer on a model (``trainer(model) -> float``):

    1. re-initialises its weights and BatchNorm statistics under ``seed`` (so that the score
       depends on the architecture and the seed, not on how the caller happened to build it);
    2. trains it in place for ``epochs`` epochs on ``train`` (mini-batches shuffled by a private
       generator, cross-entropy with optional label smoothing, AdamW or Nesterov SGD with a
       one-cycle schedule: warm-up over the first quarter, then cosine annealing to almost 0);
    3. re-estimates the BatchNorm statistics over the training set (a short run cannot settle
       the running averages at MnasNet's momentum of 0.01, and stale statistics would leave
       evaluation at chance level);
    4. returns top-1 accuracy on ``val``, in [0, 1].

    Global random state is left untouched (:func:`torch.random.fork_rng`); two calls with the
    same seed on the same architecture return the same accuracy on the same machine.

    Args:
        train: ``(images[N, C, H, W] float, labels[N] int64)`` in memory, N >= 2.
        val: the held-out pair, same layout.
        epochs: passes over ``train``.
        batch_size: images per optimisation step (>= 2: BatchNorm cannot train on one).
        lr: peak learning rate of the one-cycle schedule.
        weight_decay: decoupled (AdamW) or L2 (SGD) weight decay.
        label_smoothing: cross-entropy label smoothing in [0, 1).
        optimizer: ``"adamw"`` (default: the fastest to a usable signal from scratch) or
            ``"sgd"`` (Nesterov, momentum 0.9).
        seed: seeds initialisation, shuffling and dropout.
        device: ``"cpu"`` or ``"cuda"``.
        threads: intra-op CPU threads while training (``None``: keep the current number).
        augment: augment every training batch: random horizontal flips and random shifts of up
            to 1/8 of the side (reflection padding), drawn from the trainer's seeded generator.

    Raises:
        ArgumentTypeError: ``train`` or ``val`` is not a pair of tensors.
        InvalidArgumentError: wrong shapes or dtypes, negative labels, or an out-of-range
            setting; calling on a model whose output has fewer logits than there are classes.

    Example:
        >>> import mnaszoo
        >>> train, val = load_digits_proxy(image_size=32)
        >>> subset = (train[0][:128], train[1][:128])  # a quick demonstration
        >>> trainer = ProxyTrainer(subset, val, epochs=1, threads=1)
        >>> model = mnaszoo.create("mnasnet_small", num_classes=10)
        >>> 0.0 <= trainer(model) <= 1.0
        True
    """

    def __init__(
        self,
        train: TensorPair,
        val: TensorPair,
        *,
        epochs: int = 3,
        batch_size: int = 128,
        lr: float = 1e-2,
        weight_decay: float = 0.01,
        label_smoothing: float = 0.0,
        optimizer: str = "adamw",
        seed: int = 0,
        device: str = "cpu",
        threads: int | None = None,
        augment: bool = False,
    ) -> None:
        self.train = _check_pair("train", train)
        self.val = _check_pair("val", val)
        if self.train[0].shape[1:] != self.val[0].shape[1:]:
            raise InvalidArgumentError(
                f"train and val images differ in shape: {tuple(self.train[0].shape[1:])} and"
                f" {tuple(self.val[0].shape[1:])}; preprocess both the same way."
            )
        if self.train[0].shape[0] < 2:
            # Batches of one image are skipped (BatchNorm cannot train on them), so one image
            # would leave the network untrained and its score meaningless.
            raise InvalidArgumentError(
                f"train holds {self.train[0].shape[0]} image; proxy training needs at least 2"
                " (BatchNorm trains on batches of 2 or more)."
            )
        self.epochs = check_int("epochs", epochs, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=2)
        self.lr = check_float("lr", lr, minimum=0.0, min_inclusive=False)
        self.weight_decay = check_float("weight_decay", weight_decay, minimum=0.0)
        self.label_smoothing = check_float(
            "label_smoothing", label_smoothing, minimum=0.0, maximum=1.0, max_inclusive=False
        )
        self.optimizer = check_choice("optimizer", optimizer, _OPTIMIZERS)
        self.seed = check_int("seed", seed, minimum=0)
        if device not in ("cpu", "cuda"):
            raise InvalidArgumentError(f"device must be 'cpu' or 'cuda', got {device!r}.")
        if device == "cuda" and not torch.cuda.is_available():
            raise InvalidArgumentError(
                "device='cuda' but torch.cuda.is_available() is False; use device='cpu'."
            )
        self.device = torch.device(device)
        self.threads = None if threads is None else check_int("threads", threads, minimum=1)
        self.augment = check_bool("augment", augment)
        self.num_classes = int(max(int(self.train[1].max()), int(self.val[1].max()))) + 1

    def __repr__(self) -> str:
        return (
            f"ProxyTrainer({self.train[0].shape[0]} train / {self.val[0].shape[0]} val images of"
            f" {tuple(self.train[0].shape[1:])}, {self.epochs} epochs, batch {self.batch_size},"
            f" {self.optimizer} lr {self.lr:g}, seed {self.seed})"
        )

    def _make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        params = [p for p in model.parameters() if p.requires_grad]
        if self.optimizer == "sgd":
            return torch.optim.SGD(
                params, lr=self.lr, momentum=0.9, nesterov=True, weight_decay=self.weight_decay
            )
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)

    def _batches(self, count: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        order = torch.randperm(count, generator=generator)
        for start in range(0, count, self.batch_size):
            batch = order[start : start + self.batch_size]
            # A batch of one breaks BatchNorm in training mode; fold it into the previous step.
            if len(batch) > 1:
                yield batch

    def _check_logits(self, logits: torch.Tensor) -> None:
        if logits.dim() != 2 or logits.shape[1] < self.num_classes:
            raise InvalidArgumentError(
                f"The model returns {tuple(logits.shape)} but the data has {self.num_classes}"
                f" classes; build it with num_classes={self.num_classes}."
            )

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> float:
        """Top-1 accuracy of ``model`` (as it is) on ``val``, in [0, 1]."""
        images, labels = self.val
        model.eval()
        correct = 0
        for start in range(0, images.shape[0], 256):
            x = images[start : start + 256].to(self.device)
            logits = model(x)
            self._check_logits(logits)
            correct += int((logits.argmax(1).cpu() == labels[start : start + 256]).sum())
        return correct / images.shape[0]

    def __call__(self, model: nn.Module) -> float:
        """Re-initialise, train and score ``model`` (modified in place); see the class notes.

        Args:
            model: a classifier with at least as many outputs as the data has classes.

        Returns:
            Top-1 validation accuracy in [0, 1].
        """
        if not isinstance(model, nn.Module):
            raise ArgumentTypeError(f"model must be a torch module, got {type(model).__name__}.")
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with intra_op_threads(self.threads), torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            model.to(self.device)
            _reinitialize(model)
            images, labels = (t.to(self.device) for t in self.train)
            generator = torch.Generator().manual_seed(self.seed)
            optimizer = self._make_optimizer(model)
            schedule = OneCycle(
                optimizer,
                max_lr=self.lr,
                total_steps=planned_steps(images.shape[0], self.batch_size, self.epochs),
                pct_start=0.25,
            )
            model.train()
            for _ in range(self.epochs):
                for batch in self._batches(images.shape[0], generator):
                    x = images[batch.to(self.device)]
                    if self.augment:
                        x = _augment(x, generator)
                    logits = model(x)
                    self._check_logits(logits)
                    loss = F.cross_entropy(
                        logits, labels[batch.to(self.device)], label_smoothing=self.label_smoothing
                    )
                    if not torch.isfinite(loss):
                        # A diverged run scores like a random guess instead of failing the search.
                        return 1.0 / self.num_classes
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()  # type: ignore[no-untyped-call]
                    optimizer.step()
                    schedule.step()
            recalibrate_batchnorm(model, images, self.batch_size)
            return self.evaluate(model)


def _augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips (per image) and a random shift (per batch), seeded."""
    flip = torch.rand(images.shape[0], generator=generator) < 0.5
    images = torch.where(flip.view(-1, 1, 1, 1).to(images.device), images.flip(3), images)
    pad = max(1, images.shape[-1] // 8)
    padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    dy, dx = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=generator))
    return padded[..., dy : dy + images.shape[-2], dx : dx + images.shape[-1]]


def _digits_preprocessing(image_size: int) -> Any:
    from ...weights.manifest import Preprocessing

    # The same recipe as examples/finetune.py: bilinear upscaling, grey [0, 1] mapped to [-1, 1].
    return Preprocessing(
        input_size=image_size,
        interpolation="bilinear",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        resize_size=image_size,
    )


def _stratified_split(
    labels: torch.Tensor, val_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded per-class split: about ``val_fraction`` of every class goes to validation."""
    generator = torch.Generator().manual_seed(seed)
    train: list[torch.Tensor] = []
    val: list[torch.Tensor] = []
    for label in torch.unique(labels).tolist():
        items = torch.nonzero(labels == label).flatten()
        items = items[torch.randperm(len(items), generator=generator)]
        count = min(len(items) - 1, max(1, round(len(items) * val_fraction)))
        val.append(items[:count])
        train.append(items[count:])
    return torch.sort(torch.cat(train)).values, torch.sort(torch.cat(val)).values


def load_digits_proxy(
    image_size: int = 32, *, val_fraction: float = 0.25, seed: int = 0
) -> tuple[TensorPair, TensorPair]:
    """scikit-learn's handwritten digits as an in-memory proxy task, split per class.

    The 1,797 real 8x8 grey scans (0-16) are scaled to 8-bit, upscaled (bilinear) to
    ``image_size`` RGB by mnaszoo's evaluation transform and normalised to [-1, 1], exactly as
    ``examples/finetune.py --data digits`` prepares them. No download: the data ships with
    scikit-learn.

    Args:
        image_size: side of the square images (>= 16; 32 is the smallest a MnasNet's stride of
            32 still leaves one pixel of).
        val_fraction: share of every class held out for validation, in (0, 1).
        seed: seeds the split.

    Returns:
        ``((train_images, train_labels), (val_images, val_labels))``: float ``(N, 3, S, S)``
        and int64 ``(N,)`` tensors; about 1,350 and 450 images with the defaults.

    Raises:
        MnaszooError: scikit-learn is not installed (``pip install 'mnaszoo[examples]'``).
        InvalidArgumentError: ``image_size`` below 16 or ``val_fraction`` outside (0, 1).
    """
    check_int("image_size", image_size, minimum=16)
    check_float(
        "val_fraction",
        val_fraction,
        minimum=0.0,
        maximum=1.0,
        min_inclusive=False,
        max_inclusive=False,
    )
    check_int("seed", seed, minimum=0)
    try:
        load_digits = importlib.import_module("sklearn.datasets").load_digits
    except ImportError as error:
        raise MnaszooError(
            "load_digits_proxy needs scikit-learn: pip install 'mnaszoo[examples]'."
        ) from error
    import numpy as np
    from PIL import Image

    from ...data.transforms import make_transform

    digits = load_digits()
    # Scans hold 0..16 (white ink on black); scale to 8-bit grey as the example does.
    pixels = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    transform = make_transform(_digits_preprocessing(image_size))
    images = torch.stack([transform(Image.fromarray(p)) for p in pixels])
    labels = torch.as_tensor(digits.target, dtype=torch.int64)
    train, val = _stratified_split(labels, val_fraction, seed)
    return (images[train], labels[train]), (images[val], labels[val])
