"""The body of a training run: build everything, loop over the epochs, write the results."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import platform
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DistributedSampler

from ...errors import InvalidArgumentError
from ...models.config import ModelConfig
from ...models.mnasnet import MnasNet
from ...weights.manifest import DEFAULT_PREPROCESSING, Preprocessing
from .augment import RandAugment
from .data import load_datasets
from .distributed import Environment, average_bn_statistics
from .epoch import Loop, evaluate, train_epoch
from .model import ModelSource, build_optimizer, fit_head, load_model, load_teacher, prepare_bn
from .output import (
    STATE_PATH,
    as_mnasnet,
    check_output,
    save_epoch,
    trained_record,
    write_json,
)
from .recipes import Recipe
from .report import Progress, TensorBoard, plot_curves, write_metrics
from .schedule import Schedule, epoch_steps, warmup_steps
from .state import load_state, random_state, save_state, set_random_state

__all__ = ["TrainResult", "run_training"]

logger = logging.getLogger("mnaszoo.train")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the best weights by validation accuracy (EMA weights when the recipe keeps
            them), in eval mode, with class names and preprocessing in ``weights_info``.
        output: the output folder (a ``save_pretrained`` folder; see ``docs/train.md``).
        best_val_acc: validation accuracy of ``model``, in [0, 1].
        best_epoch: the epoch it was reached (from 1).
        epochs: epochs trained (fewer than the recipe's when stopped early).
        history: one dict per epoch, as in ``metrics.jsonl``.
    """

    model: MnasNet
    output: Path
    best_val_acc: float
    best_epoch: int
    epochs: int
    history: list[dict[str, Any]]


def _ema_avg(decay: float) -> Any:
    cache: dict[tuple[int, int], float] = {}

    def average(averaged: torch.Tensor, current: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        # Warm the decay up, (1 + n) / (10 + n), so that short runs are not dominated by the
        # random initial weights. The count is read once per update (it changes in place after
        # each), not once per tensor: on a GPU every read waits for the device.
        key = (id(count), count._version)
        d = cache.get(key)
        if d is None:
            n = float(count)
            d = min(decay, (1.0 + n) / (10.0 + n))
            cache.clear()
            cache[key] = d
        return averaged * d + current * (1.0 - d)

    return average


def _settings(
    recipe: Recipe,
    seed: int,
    patience: int | None,
    preprocessing: Preprocessing,
    extra: dict[str, Any],
) -> dict[str, Any]:
    return {
        "recipe": recipe.to_dict(),
        "seed": seed,
        "patience": patience,
        "preprocessing": preprocessing.to_dict(),
        **extra,
    }


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_training(env: Environment, data: Path, out: Path, **kw: Any) -> TrainResult:
    wall_start = time.perf_counter()
    resume: bool = kw["resume"]
    created = False
    if env.main:
        check_output(out, resume=resume, overwrite=kw["overwrite"])
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
    env.barrier()
    try:
        return _train_into(env, data, out, wall_start, **kw)
    except BaseException:
        # A run refused before its first write (a bad model, bad data) leaves no empty OUT.
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _train_into(
    env: Environment, data: Path, out: Path, wall_start: float, **kw: Any
) -> TrainResult:
    resume: bool = kw["resume"]
    saved: dict[str, Any] | None = load_state(out / STATE_PATH) if resume else None
    recipe: Recipe = kw["recipe"]
    seed: int = kw["seed"]
    patience: int | None = kw["patience"]
    if saved is not None:
        # A resumed run continues with its own settings, whatever the call says.
        recipe = dataclasses.replace(Recipe(), **_recipe_fields(saved["settings"]["recipe"]))
        seed, patience = saved["settings"]["seed"], saved["settings"]["patience"]
        logger.info("resuming %s after epoch %d", out, saved["epoch"])
    _seed_everything(seed)

    # The model first (its weights carry the preprocessing), then the data, then the head.
    if saved is not None:
        net_model = MnasNet(ModelConfig.from_dict(saved["model_config"]))
        source = ModelSource(**saved["source"])
        preprocessing = Preprocessing.from_dict(saved["settings"]["preprocessing"])
    else:
        net_model, source = load_model(
            kw["model"],
            pretrained=kw["pretrained"],
            checkpoint=kw["checkpoint"],
            drop_path_rate=recipe.drop_path_rate,
            local_files_only=kw["local_files_only"],
        )
        preprocessing = _preprocessing(
            net_model, kw["input_size"], kw["crop_pct"], kw["preprocessing"]
        )
    datasets = load_datasets(
        data,
        preprocessing,
        val=kw["val"],
        val_fraction=kw["val_fraction"],
        seed=seed,
        corrupt=kw["corrupt"],
    )
    classes = datasets.classes
    if saved is not None:
        if list(classes) != saved["classes"] or datasets.record["train"] != saved["split"]["train"]:
            raise InvalidArgumentError(
                f"The data under {str(data)!r} is not the data the run in {str(out)!r} was"
                " trained on (other classes or images); resume with the same folders, or start"
                " again with --overwrite."
            )
    else:
        source = fit_head(net_model, source, len(classes))
    net_model.weights_info = trained_record(net_model.config.spec.name, classes, preprocessing, out)
    bn_frozen = prepare_bn(net_model, source, recipe)
    channels_last = env.device.type == "cuda"
    net_model.to(env.device)
    if channels_last:
        net_model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = build_optimizer(net_model, source, recipe)
    ema = None
    if recipe.ema_decay is not None:
        ema = AveragedModel(net_model, avg_fn=_ema_avg(recipe.ema_decay), use_buffers=True)

    # The sampler only needs the length; a range of indices stands in for the dataset.
    sampler: DistributedSampler[int] = DistributedSampler(
        cast(Any, range(len(datasets.train))),
        num_replicas=env.world_size,
        rank=env.rank,
        shuffle=True,
        seed=seed,
    )
    batch_size, steps = epoch_steps(len(datasets.train), recipe.batch_size, env.world_size)
    recipe = dataclasses.replace(recipe, batch_size=batch_size)
    total = recipe.epochs * steps
    schedule = Schedule(
        total, warmup_steps(recipe.warmup_epochs, steps, total), recipe.min_lr_ratio
    )
    augment = (
        RandAugment(recipe.randaugment_ops, recipe.randaugment_magnitude, kw["augment_backend"])
        if recipe.randaugment_ops > 0
        else None
    )
    use_amp = env.device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16

    def autocast() -> contextlib.AbstractContextManager[Any]:
        return torch.autocast(env.device.type, dtype=amp_dtype, enabled=use_amp)

    scaler = torch.amp.GradScaler(env.device.type, enabled=use_amp and amp_dtype == torch.float16)
    teacher_model = None
    teacher_source = kw["teacher"] if saved is None else saved["settings"].get("teacher")
    if teacher_source is not None:
        teacher_model = load_teacher(teacher_source, len(classes), env.device)
    generator = torch.Generator().manual_seed(seed * 1000 + 1 + env.rank)
    # Every process built the same initial weights; from here on dropout draws differ.
    torch.manual_seed(seed * 1000 + 2 + env.rank)

    history: list[dict[str, Any]] = []
    best = {"val_acc": -1.0, "epoch": 0}
    start_epoch = 0
    step = 0
    train_seconds = 0.0
    if saved is not None:
        net_model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if ema is not None:
            ema.load_state_dict(saved["ema"])
        scaler.load_state_dict(saved["scaler"])
        start_epoch, step = int(saved["epoch"]), int(saved["step"])
        history, best = list(saved["history"]), dict(saved["best"])
        train_seconds = float(saved["train_seconds"])
        if len(saved["random"]) == env.world_size:
            set_random_state(saved["random"][env.rank], {"augment": generator})
        else:
            logger.warning("resumed with another number of processes: random streams reseeded")
    net: nn.Module = net_model
    if env.world_size > 1:
        net = nn.parallel.DistributedDataParallel(
            net_model, device_ids=[env.device.index] if env.device.type == "cuda" else None
        )
    mean = torch.tensor(preprocessing.mean, device=env.device).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std, device=env.device).view(1, 3, 1, 1)
    loop = Loop(
        env,
        recipe,
        net,
        net_model,
        optimizer,
        schedule,
        ema,
        augment,
        generator,
        mean,
        std,
        len(classes),
        teacher_model,
        autocast,
        scaler,
        channels_last,
        step,
    )
    extra = {
        "teacher": teacher_source if isinstance(teacher_source, str) else None,
        "augment_backend": augment.backend if augment is not None else None,
        "world_size": env.world_size,
        "steps_per_epoch": steps,
        "warmup_steps": schedule.warmup,
        "bn_frozen": bn_frozen,
        "amp": str(amp_dtype).replace("torch.", "") if use_amp else None,
        "channels_last": channels_last,
    }
    settings = _settings(recipe, seed, patience, preprocessing, extra)
    logger.info(
        "%s (%s): %d train / %d validation images, %d classes, %dpx; recipe %s, %d epochs of %d"
        " steps; %d process(es) on %s",
        net_model.config.spec.name,
        "fine-tuning" if source.finetune else "from scratch",
        len(datasets.train),
        len(datasets.val),
        len(classes),
        preprocessing.input_size,
        recipe.name,
        recipe.epochs,
        steps,
        env.world_size,
        env.device,
    )
    if env.main and saved is None:
        from ..._io import write_text_atomic

        write_text_atomic(out / "classes.txt", "\n".join(classes) + "\n")
        write_json(out / "split.json", datasets.record)
    board = TensorBoard(out / "tensorboard", kw["tensorboard"] and env.main)
    stopped_early = False
    try:
        for epoch in range(start_epoch, recipe.epochs):
            if patience is not None and epoch - best["epoch"] >= patience and best["epoch"] > 0:
                stopped_early = True
                break
            started = time.perf_counter()
            sampler.set_epoch(epoch)
            order = list(sampler)
            bar = Progress(steps, f"epoch {epoch + 1}/{recipe.epochs}", kw["progress"] and env.main)
            try:
                sums = train_epoch(loop, datasets.train, order, steps, bar)
            finally:
                bar.close()
            average_bn_statistics(net_model, env.world_size)
            loss_sum, correct, count = env.sum([sums["loss_sum"], sums["correct"], sums["count"]])
            train_seconds += time.perf_counter() - started
            val_loss, val_acc = evaluate(loop, net_model, datasets.val, 2 * batch_size)
            row: dict[str, Any] = {
                "epoch": epoch + 1,
                "train_loss": loss_sum / max(count, 1.0),
                "train_acc": correct / max(count, 1.0),
                "val_loss": val_loss,
                "val_acc": val_acc,
                "ema_val_loss": None,
                "ema_val_acc": None,
                "lr": float(optimizer.param_groups[-1]["lr"]),
                "images_per_s": count / max(time.perf_counter() - started, 1e-9),
                "train_seconds": train_seconds,
            }
            kept: nn.Module = net_model
            score = val_acc
            if ema is not None:
                row["ema_val_loss"], row["ema_val_acc"] = evaluate(
                    loop, ema.module, datasets.val, 2 * batch_size
                )
                kept, score = ema.module, float(row["ema_val_acc"])
            history.append(row)
            improved = score > best["val_acc"]
            if improved:
                best = {"val_acc": score, "epoch": epoch + 1}
            logger.info(
                "epoch %d/%d  train loss %.4f acc %.2f%%  val loss %.4f acc %.2f%%%s  lr %.2e"
                "  %.0f img/s",
                epoch + 1,
                recipe.epochs,
                row["train_loss"],
                100 * row["train_acc"],
                val_loss,
                100 * val_acc,
                "" if ema is None else f"  EMA acc {100 * float(row['ema_val_acc']):.2f}%",
                row["lr"],
                row["images_per_s"],
            )
            states: list[Any] = [None] * env.world_size
            mine = random_state({"augment": generator})
            if env.world_size > 1:
                torch.distributed.all_gather_object(states, mine)
            else:
                states = [mine]
            if env.main:
                save_epoch(out, kept, classes, improved)
                write_metrics(out / "metrics.jsonl", history)
                board.log(row)
                save_state(
                    {
                        "epoch": epoch + 1,
                        "step": loop.step,
                        "model": net_model.state_dict(),
                        "ema": None if ema is None else ema.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scaler": scaler.state_dict(),
                        "random": states,
                        "history": history,
                        "best": best,
                        "train_seconds": train_seconds,
                        "settings": settings,
                        "model_config": net_model.config.to_dict(),
                        "source": dataclasses.asdict(source),
                        "classes": list(classes),
                        "split": {"train": datasets.record["train"]},
                    },
                    out / STATE_PATH,
                )
            env.barrier()
    finally:
        board.close()
    result_model = _best_model(out, env, ema.module if ema is not None else net_model)
    summary = {
        "best_val_acc": best["val_acc"],
        "best_epoch": best["epoch"],
        "epochs": len(history),
        "stopped_early": stopped_early,
        "train_seconds": round(train_seconds, 2),
        "wall_seconds": round(time.perf_counter() - wall_start, 2),
        "final": history[-1] if history else None,
    }
    if env.main:
        write_json(
            out / "training.json",
            {
                "settings": settings,
                "model": {**dataclasses.asdict(source), "architecture": net_model.config.spec.name},
                "data": {
                    k: v for k, v in datasets.record.items() if k not in ("train", "validation")
                }
                | {"train_images": len(datasets.train), "val_images": len(datasets.val)},
                "environment": {
                    "device": str(env.device),
                    "world_size": env.world_size,
                    "threads_per_process": torch.get_num_threads(),
                    "torch": torch.__version__,
                    "python": platform.python_version(),
                },
                "results": summary,
            },
        )
        plot_curves(history, out, f"{net_model.config.spec.name} on {data.name} ({recipe.name})")
    return TrainResult(
        result_model, out, float(best["val_acc"]), int(best["epoch"]), len(history), history
    )


def _recipe_fields(saved: dict[str, Any]) -> dict[str, Any]:
    fields = dict(saved)
    fields["crop_scale"] = tuple(fields["crop_scale"])
    fields["crop_ratio"] = tuple(fields["crop_ratio"])
    return fields


def _preprocessing(
    model: MnasNet, input_size: int | None, crop_pct: float | None, given: Preprocessing | None
) -> Preprocessing:
    if given is not None:
        if not isinstance(given, Preprocessing):
            raise InvalidArgumentError(
                f"preprocessing must be a mnaszoo Preprocessing, got {type(given).__name__}."
            )
        return given
    from ...data.transforms import make_transform

    base = (
        model.weights_info.preprocessing
        if model.weights_info is not None
        else DEFAULT_PREPROCESSING
    )
    chosen = make_transform(base, input_size=input_size).preprocessing
    if crop_pct is not None:
        chosen = dataclasses.replace(chosen, crop_pct=crop_pct, resize_size=None)
    return chosen


def _best_model(out: Path, env: Environment, current: nn.Module) -> MnasNet:
    """The best weights, read back from ``out`` by rank 0. Other processes, whose machine may
    not see ``out``, return the last weights they hold."""
    from ...weights.hub import from_pretrained

    env.barrier()
    if env.main:
        return from_pretrained(out)
    return as_mnasnet(current).eval()
