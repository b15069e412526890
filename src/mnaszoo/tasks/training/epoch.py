"""One epoch of training, and the validation pass."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from .augment import RandAugment, random_resized_crop
from .data import Dataset
from .distributed import Environment
from .losses import distillation_loss, mix_batch, smooth_targets, soft_cross_entropy
from .recipes import Recipe
from .report import Progress
from .schedule import Schedule

__all__ = ["Loop", "evaluate", "train_epoch"]


@dataclass
class Loop:
    """What every step uses."""

    env: Environment
    recipe: Recipe
    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    ema: AveragedModel | None
    augment: RandAugment | None
    generator: torch.Generator  # augmentation and mixing draws (one per process)
    mean: torch.Tensor
    std: torch.Tensor
    num_classes: int
    teacher: nn.Module | None
    autocast: Callable[[], contextlib.AbstractContextManager[Any]]
    scaler: torch.amp.GradScaler
    channels_last: bool
    step: int = 0

    def set_lr(self) -> None:
        """The schedule's rate for the next step, in every group."""
        factor = self.schedule(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * group["lr_scale"] * factor

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 pixels to normalised floats, the arithmetic of mnaszoo's transform."""
        images = pixels.to(self.env.device, non_blocking=True).float().div_(255)
        images = images.sub_(self.mean).div_(self.std)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images


def _augment(loop: Loop, pixels: torch.Tensor) -> torch.Tensor:
    images = pixels.to(loop.env.device, non_blocking=True).float().div_(255)
    recipe = loop.recipe
    images = random_resized_crop(
        images,
        loop.generator,
        scale=recipe.crop_scale,
        ratio=recipe.crop_ratio,
        hflip=recipe.hflip,
    )
    if loop.augment is not None:
        images = loop.augment(images, loop.generator)
    images = images.sub_(loop.mean).div_(loop.std)
    if loop.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


def train_epoch(
    loop: Loop, data: Dataset, order: list[int], steps: int, progress: Progress
) -> dict[str, float]:
    """Train on ``steps`` batches of ``order``; returns this process's sums."""
    recipe = loop.recipe
    loop.net.train()
    loss_sum = correct = count = 0.0
    start = time.perf_counter()
    for index in range(steps):
        batch = torch.tensor(order[index * recipe.batch_size : (index + 1) * recipe.batch_size])
        labels = data.labels[batch].to(loop.env.device)
        images = _augment(loop, data.pixels[batch])
        targets = smooth_targets(labels, loop.num_classes, recipe.label_smoothing)
        images, targets, _ = mix_batch(
            images,
            targets,
            loop.generator,
            mixup_alpha=recipe.mixup_alpha,
            cutmix_alpha=recipe.cutmix_alpha,
            prob=recipe.mix_prob,
        )
        loop.set_lr()
        with loop.autocast():
            logits = loop.net(images)
            loss = soft_cross_entropy(logits, targets)
            if loop.teacher is not None:
                with torch.no_grad():
                    teacher_logits = loop.teacher(images)
                soft = distillation_loss(logits, teacher_logits, recipe.distill_temperature)
                loss = (1 - recipe.distill_alpha) * loss + recipe.distill_alpha * soft
        loop.optimizer.zero_grad(set_to_none=True)
        loop.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        if recipe.clip_grad is not None:
            loop.scaler.unscale_(loop.optimizer)
            nn.utils.clip_grad_norm_(loop.model.parameters(), recipe.clip_grad)
        loop.scaler.step(loop.optimizer)
        loop.scaler.update()
        if loop.ema is not None:
            loop.ema.update_parameters(loop.model)
        loop.step += 1
        n = labels.numel()
        loss_sum += float(loss.detach()) * n
        correct += float((logits.detach().argmax(1) == targets.argmax(1)).sum())
        count += n
        seconds = max(time.perf_counter() - start, 1e-9)
        progress.update(loss_sum / count, correct / count, count * loop.env.world_size / seconds)
    return {"loss_sum": loss_sum, "correct": correct, "count": count}


def evaluate(loop: Loop, model: nn.Module, data: Dataset, batch_size: int) -> tuple[float, float]:
    """Validation loss and accuracy of ``model``, over every process's shard."""
    env = loop.env
    model.eval()
    loss_sum = correct = count = 0.0
    shard = torch.arange(env.rank, len(data), env.world_size)
    with torch.no_grad():
        for start in range(0, len(shard), batch_size):
            batch = shard[start : start + batch_size]
            labels = data.labels[batch].to(env.device)
            with loop.autocast():
                logits = model(loop.normalise(data.pixels[batch]))
            loss_sum += float(
                torch.nn.functional.cross_entropy(logits.float(), labels, reduction="sum")
            )
            correct += float((logits.argmax(1) == labels).sum())
            count += labels.numel()
    loss_sum, correct, count = env.sum([loss_sum, correct, count])
    return loss_sum / max(count, 1.0), correct / max(count, 1.0)
