"""Strict loading of mnaszoo-layout state dicts, with diagnostics that name the likely cause."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from ..errors import CorruptCheckpointError, IncompatibleWeightsError
from ..models.shapes import CLASSIFIER_PREFIX, matching_models

__all__ = ["adapt_input_conv", "diff_shapes", "load_into"]

logger = logging.getLogger(__name__)


_HEAD_PREFIXES = ("head.", "classifier.")
_MAX_LISTED = 5


def _shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state.items()}


def diff_shapes(
    expected: Mapping[str, tuple[int, ...]],
    found: Mapping[str, tuple[int, ...]],
    ignore: Iterable[str] = ("num_batches_tracked",),
) -> tuple[list[str], list[str], list[str]]:
    """Missing keys, unexpected keys and ``key: model shape vs checkpoint shape`` mismatches."""
    skip = tuple(ignore)
    missing = [k for k in expected if k not in found and not k.endswith(skip)]
    unexpected = [k for k in found if k not in expected and not k.endswith(skip)]
    mismatched = [
        f"{k}: model {expected[k]} vs checkpoint {found[k]}"
        for k in expected
        if k in found and expected[k] != found[k]
    ]
    return missing, unexpected, mismatched


def _likely_cause(
    model_name: str, expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]]
) -> str:
    has_se = any(".se." in k for k in found)
    wants_se = any(".se." in k for k in expected)
    fits = matching_models(found)
    causes = []
    if fits:
        causes.append(f"these weights fit {', '.join(repr(n) for n in fits)}: create that model")
    if has_se != wants_se:
        with_se, without_se = ("checkpoint", "model") if has_se else ("model", "checkpoint")
        causes.append(
            f"the {with_se} has squeeze-and-excitation layers (MnasNet-A1 or small) and the"
            f" {without_se} has none (MnasNet-B1)"
        )
    elif expected.get("stem.conv.weight") != found.get("stem.conv.weight"):
        causes.append("the stem widths differ: the checkpoint was trained at another width_mult")
    if not causes:
        causes.append(f"the checkpoint is not a {model_name} of this configuration")
    return "; ".join(causes)


def _listing(title: str, items: list[str]) -> str:
    if not items:
        return ""
    more = f" (and {len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
    return f"\n  {title}: " + "; ".join(items[:_MAX_LISTED]) + more


def _part(key: str) -> str:
    """``stages.3`` for stage keys, else the top-level module (``stem``, ``head``, ...)."""
    pieces = key.split(".")
    return ".".join(pieces[:2]) if pieces[0] == "stages" else pieces[0]


def _drop_unused_parts(
    state: dict[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], source: str
) -> dict[str, torch.Tensor]:
    # A backbone (features_only, maybe trimmed by out_indices) uses a prefix of the network, and a
    # model with num_classes=0 has no classifier: their checkpoints' extra parts are not errors.
    # Anything else the model lacks stays in the state and is reported as unexpected.
    parts = {_part(k) for k in expected}
    is_backbone = "head" not in parts
    unused = sorted({_part(k) for k in state} - parts)
    droppable = [p for p in unused if p == "classifier" or (is_backbone and p != "stem")]
    if droppable:
        logger.info(
            "Not loading %s from %s: the model has no such layers.", ", ".join(droppable), source
        )
    return {k: v for k, v in state.items() if _part(k) not in droppable}


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Adapt an RGB stem kernel to ``in_chans`` inputs, keeping the response to grey images.

    One channel sums the RGB kernels; more channels repeat them, scaled by ``3 / in_chans``
    (timm's ``adapt_input_conv`` rule).
    """
    if weight.shape[1] == in_chans:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_chans // weight.shape[1])
    return weight.repeat(1, repeats, 1, 1)[:, :in_chans] * (weight.shape[1] / in_chans)


def _check_finite(state: Mapping[str, torch.Tensor], source: str) -> None:
    # NaN or infinite weights give NaN scores for every image: refuse them at the door.
    bad = [
        key
        for key, value in state.items()
        if value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]
    if bad:
        raise CorruptCheckpointError(
            f"The checkpoint {source} holds NaN or infinite values in {len(bad)} tensor(s)"
            f" ({', '.join(bad[:_MAX_LISTED])}{', ...' if len(bad) > _MAX_LISTED else ''}):"
            " the training run diverged or the file is damaged. Use an earlier checkpoint."
        )


def load_into(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    source: str,
    model_name: str,
    num_classes: int | None = None,
) -> None:
    """Load a mnaszoo-layout ``state`` into ``model`` strictly, or raise with the differences.

    The classifier is replaced only when the caller asked for it: ``num_classes`` is the
    ``num_classes`` the caller passed (``None``: not asked), and when it differs from the
    checkpoint's number of classes, every other layer loads and the classifier keeps its fresh
    initialisation (logged). Any other difference, a classifier of the wrong input width
    included, is an :class:`~mnaszoo.errors.IncompatibleWeightsError`. Backbones
    (``features_only``) ignore the checkpoint's head and classifier. A stem with another number
    of input channels is adapted (logged). Non-finite weights are a
    :class:`~mnaszoo.errors.CorruptCheckpointError`.
    """
    _check_finite(state, source)
    expected = _shapes(model.state_dict())
    state = _drop_unused_parts(dict(state), expected, source)
    stem = state.get("stem.conv.weight")
    want = expected.get("stem.conv.weight")
    if (
        stem is not None
        and want is not None
        and stem.shape[1] != want[1]
        and stem.shape[0] == want[0]
    ):
        state["stem.conv.weight"] = adapt_input_conv(stem, want[1])
        logger.info(
            "Adapted the stem of %s from %d to %d input channels.", source, stem.shape[1], want[1]
        )
    classifier = {k: v for k, v in state.items() if k.startswith(CLASSIFIER_PREFIX)}
    checkpoint_classes = next(iter(classifier.values())).shape[0] if classifier else None
    if (
        classifier
        and num_classes is not None
        and checkpoint_classes != num_classes
        and any(expected.get(k) != tuple(v.shape) for k, v in classifier.items())
    ):
        state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIX)}
        logger.warning(
            "The classifier of %s has %d classes and the model %d: it is freshly initialised;"
            " every other layer is loaded.",
            source,
            checkpoint_classes,
            getattr(model, "num_classes", -1),
        )
        expected = {k: v for k, v in expected.items() if not k.startswith(CLASSIFIER_PREFIX)}
    missing, unexpected, mismatched = diff_shapes(expected, _shapes(state))
    if missing or unexpected or mismatched:
        raise IncompatibleWeightsError(
            f"The checkpoint {source} does not fit {model_name!r}: likely cause:"
            f" {_likely_cause(model_name, expected, _shapes(state))}."
            + _listing("shape mismatches", mismatched)
            + _listing("missing from the checkpoint", missing)
            + _listing("unexpected in the checkpoint", unexpected)
        )
    result = model.load_state_dict(state, strict=False)
    # strict=False only so that the classifier may stay fresh; anything else missing is a bug.
    leftover = [
        k
        for k in result.missing_keys
        if not k.startswith(CLASSIFIER_PREFIX) and not k.endswith("num_batches_tracked")
    ]
    if leftover or result.unexpected_keys:
        raise IncompatibleWeightsError(
            f"The checkpoint {source} did not load completely into {model_name!r}:"
            f" missing {leftover[:_MAX_LISTED]}, unexpected {result.unexpected_keys[:_MAX_LISTED]}."
        )
