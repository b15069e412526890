"""``describe``: the resolved per-stage table of a model, with parameters and MACs."""

from __future__ import annotations

from dataclasses import dataclass

from .._validate import check_int, renamed_input_size
from ..errors import ArgumentTypeError
from .config import ModelConfig
from .counting import LayerCount, count_layers
from .specs import NetworkSpec

__all__ = ["StageRow", "Summary", "describe"]


@dataclass(frozen=True)
class StageRow:
    """One line of the table: the stem, a stage, the head or the classifier."""

    name: str
    kind: str
    repeats: int
    kernel: int
    stride: int
    in_channels: int
    mid_channels: str
    out_channels: int
    se_channels: str
    residuals: int
    out_size: tuple[int, int]
    params: int
    macs: int


@dataclass(frozen=True)
class Summary:
    """The table :func:`describe` returns; ``str(summary)`` renders it.

    Attributes:
        title: the model, its multipliers and number of classes.
        image_size: the input resolution the output sizes and MACs are for.
        rows: the stem, one row per stage, the head and the classifier.
    """

    title: str
    image_size: tuple[int, int]
    rows: tuple[StageRow, ...]

    @property
    def params(self) -> int:
        """Total trainable parameters."""
        return sum(row.params for row in self.rows)

    @property
    def macs(self) -> int:
        """Total multiply-accumulates at ``image_size``."""
        return sum(row.macs for row in self.rows)

    def __str__(self) -> str:
        header = (
            "stage",
            "op",
            "r",
            "k",
            "s",
            "in",
            "mid",
            "out",
            "SE",
            "skip",
            "output",
            "params",
            "MACs",
        )
        lines = [header]
        for row in self.rows:
            lines.append(
                (
                    row.name,
                    row.kind,
                    str(row.repeats),
                    str(row.kernel),
                    str(row.stride),
                    str(row.in_channels),
                    row.mid_channels,
                    str(row.out_channels),
                    row.se_channels,
                    str(row.residuals),
                    f"{row.out_size[0]}x{row.out_size[1]}",
                    f"{row.params:,}",
                    f"{row.macs / 1e6:.2f}M",
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = [f"{self.title} @ {self.image_size[0]}x{self.image_size[1]}"]
        for line in lines:
            text.append(
                "  ".join(
                    cell.rjust(width) for cell, width in zip(line, widths, strict=True)
                ).rstrip()
            )
        text.append(f"total: {self.params:,} parameters, {self.macs / 1e6:.2f}M MACs")
        return "\n".join(text)


def _distinct(values: list[int]) -> str:
    unique = list(dict.fromkeys(values))
    return ",".join(str(v) for v in unique) if any(unique) else "-"


def describe(
    model: object, *, input_size: int | None = None, image_size: int | None = None
) -> Summary:
    """The resolved per-stage table of a model.

    Args:
        model: a registered name, a :class:`~mnaszoo.models.specs.NetworkSpec`, a
            :class:`~mnaszoo.models.config.ModelConfig`, or a model built by mnaszoo.
        input_size: input resolution for output sizes and MACs (224).
        image_size: deprecated spelling of ``input_size`` (warns; goes in the next release).

    Returns:
        A :class:`Summary`; ``print(describe(...))`` shows channels, repeats, SE widths,
        parameters and MACs per stage.

    Raises:
        UnknownModelError: a name that is not registered.
        InvalidArgumentError: ``input_size`` is not positive, or both spellings were given.
        ArgumentTypeError: ``model`` is none of the accepted types.

    Example:
        >>> summary = describe("mnasnet_a1")
        >>> summary.params, round(summary.macs / 1e6, 2)
        (3887038, 311.58)
        >>> print(describe("mnasnet_small", input_size=160))  # doctest: +ELLIPSIS
        mnasnet_small (width x1, depth x1, 1000 classes) @ 160x160
             stage      op  r  k  s    in      mid   out    SE  skip  output     params   MACs
              stem    conv  1  3  2     3        -     8     -     0   80x80        232  1.38M
        ...
        total: 2,030,264 parameters, 35.53M MACs
    """
    size = renamed_input_size(input_size, image_size)
    check_int("input_size", size, minimum=1)
    config = _as_config(model)
    plan = config.plan
    counts = dict(
        count_layers(plan, size, num_classes=config.num_classes, in_chans=config.in_chans)
    )
    rows = [_single("stem", "conv", 3, 2, config.in_chans, plan.stem_channels, counts["stem"])]
    for index, stage in enumerate(plan.stages):
        stage_counts = [counts[f"stages.{index}.{block.index}"] for block in stage]
        first = stage[0]
        rows.append(
            StageRow(
                name=f"stages.{index}",
                kind=first.kind.value,
                repeats=len(stage),
                kernel=first.kernel,
                stride=first.stride,
                in_channels=first.in_channels,
                mid_channels=_distinct([block.mid_channels for block in stage]),
                out_channels=first.out_channels,
                se_channels=_distinct([block.se_channels for block in stage]),
                residuals=sum(block.residual for block in stage),
                out_size=stage_counts[-1].out_size,
                params=sum(c.params for c in stage_counts),
                macs=sum(c.macs for c in stage_counts),
            )
        )
    rows.append(
        _single(
            "head", "conv", 1, 1, plan.blocks[-1].out_channels, plan.head_channels, counts["head"]
        )
    )
    if "classifier" in counts:
        rows.append(
            _single(
                "classifier",
                "linear",
                1,
                1,
                plan.head_channels,
                config.num_classes,
                counts["classifier"],
            )
        )
    title = (
        f"{config.spec.name} (width x{config.width_mult:g}, depth x{config.depth_mult:g},"
        f" {config.num_classes} classes)"
    )
    return Summary(title=title, image_size=(size, size), rows=tuple(rows))


def _single(
    name: str, kind: str, kernel: int, stride: int, c_in: int, c_out: int, count: LayerCount
) -> StageRow:
    return StageRow(
        name=name,
        kind=kind,
        repeats=1,
        kernel=kernel,
        stride=stride,
        in_channels=c_in,
        mid_channels="-",
        out_channels=c_out,
        se_channels="-",
        residuals=0,
        out_size=count.out_size,
        params=count.params,
        macs=count.macs,
    )


def _as_config(model: object, function: str = "describe") -> ModelConfig:
    if isinstance(model, ModelConfig):
        return model
    if isinstance(model, NetworkSpec):
        return ModelConfig.resolve(model)
    if isinstance(model, str):
        from .registry import get_entry

        entry = get_entry(model)
        return ModelConfig.resolve(entry.spec, width_mult=entry.width_mult)
    config = getattr(model, "config", None)
    if isinstance(config, ModelConfig):
        return config
    raise ArgumentTypeError(
        f"{function}() takes a model name, a NetworkSpec, a ModelConfig or a mnaszoo model, got"
        f" {type(model).__name__}."
    )
