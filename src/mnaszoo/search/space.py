"""The MnasNet paper's factorised hierarchical search space.

The network is a fixed skeleton of blocks (MobileNetV2's by default: stride, base width and base
depth per block). For every block the search picks, in this token order: the operation, the
kernel size, the squeeze-and-excitation ratio, whether identity skips are allowed, a multiplier of
the block's base width and a change of its base depth. All blocks of one stage share the choice, so
an architecture is one :class:`BlockChoice` per skeleton block, and a controller emits it as a flat
sequence of integer tokens (indices into each decision's options).

Every architecture converts to an ordinary :class:`~mnaszoo.models.specs.NetworkSpec` with
:meth:`SearchSpace.to_spec`, so ``mnaszoo.build`` and the counters work on it unchanged.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from .._validate import check_bool, check_int
from ..errors import ArgumentTypeError, InvalidArgumentError
from ..models.plan import BlockPlan, make_divisible, resolve_plan
from ..models.specs import NetworkSpec, StageSpec
from .choices import (
    DEFAULT_FILTERS,
    DEFAULT_KERNELS,
    DEFAULT_LAYERS,
    DEFAULT_OPS,
    DEFAULT_SE_RATIOS,
    DEFAULT_SKIPS,
    FIELDS,
    MOBILENET_V2_BASE,
    BaseBlock,
    BlockChoice,
    Decision,
    check_filters,
    check_kernel,
    check_layers,
    check_op,
    check_se,
    op_kind,
    options,
)

__all__ = ["SearchSpace"]

from ._space_io import SPACE_FORMAT as _SPACE_FORMAT


class SearchSpace:
    """A factorised hierarchical search space (MnasNet paper, Section 4.1).

    Each skeleton block contributes six tokens (:data:`FIELDS` order), each an index into that
    decision's options. With the defaults, a block has 4 x 2 x 2 x 2 x 3 x 3 = 288 choices and the
    space has 288^7 (about 1.6e17) token sequences.

    Widths are ``make_divisible(base channels x filters)`` (multiples of 8, never more than 10%
    down). Depths are ``base repeats + layers`` *clamped to at least 1*; the clamp makes some
    token sequences equal (for a 1-layer block, ``layers=-1`` and ``0`` give the same network), as
    do width rounding (16 x 0.75 rounds up to 16) and the skip flag where no layer can have an
    identity skip (a single layer that changes stride or width). :attr:`size` counts token
    sequences as the paper does; :meth:`distinct_size` counts the distinct networks exactly.

    Args:
        base: the skeleton, one :class:`BaseBlock` per searched block.
        stem_channels: output channels of the fixed 3x3 stride-2 stem.
        head_channels: channels of the fixed final 1x1 convolution.
        ops: operation options (see :class:`BlockChoice`).
        kernels: kernel-size options (3, 5 or 7).
        se_ratios: squeeze-and-excitation ratio options in [0, 1).
        skips: skip options (``False``/``True``).
        filters: width-multiplier options in (0, 8].
        layers: depth-change options (integers).

    Raises:
        InvalidArgumentError: an option is out of range, repeated, or a list is empty.
        ArgumentTypeError: an argument has the wrong type.

    Example:
        >>> import random
        >>> space = SearchSpace()
        >>> space.size == 288**7, len(space.decisions)
        (True, 42)
        >>> tokens = space.sample(random.Random(0))
        >>> space.encode(space.decode(tokens)) == tokens
        True
        >>> space.to_spec(space.base_tokens()).stages[1]
        StageSpec(kind=<BlockKind.MB: 'mb'>, repeats=2, kernel=3, stride=2, expansion=6, \
out_channels=24, se_ratio=0.0, skip=True)
    """

    def __init__(
        self,
        base: Sequence[BaseBlock] = MOBILENET_V2_BASE,
        *,
        stem_channels: int = 32,
        head_channels: int = 1280,
        ops: Sequence[str] = DEFAULT_OPS,
        kernels: Sequence[int] = DEFAULT_KERNELS,
        se_ratios: Sequence[float] = DEFAULT_SE_RATIOS,
        skips: Sequence[bool] = DEFAULT_SKIPS,
        filters: Sequence[float] = DEFAULT_FILTERS,
        layers: Sequence[int] = DEFAULT_LAYERS,
    ) -> None:
        if isinstance(base, (str, bytes)) or not isinstance(base, Sequence) or not base:
            raise ArgumentTypeError("base must be a non-empty tuple of BaseBlock.")
        for index, block in enumerate(base):
            if not isinstance(block, BaseBlock):
                raise ArgumentTypeError(
                    f"base[{index}] must be a BaseBlock, got {type(block).__name__}."
                )
        self.base: tuple[BaseBlock, ...] = tuple(base)
        self.stem_channels = check_int("stem_channels", stem_channels, minimum=1)
        self.head_channels = check_int("head_channels", head_channels, minimum=1)
        self.options: dict[str, tuple[Any, ...]] = {
            "op": options("ops", ops, check_op),
            "kernel": options("kernels", kernels, check_kernel),
            "se_ratio": options("se_ratios", se_ratios, check_se),
            "skip": options("skips", skips, check_bool),
            "filters": options("filters", filters, check_filters),
            "layers": options("layers", layers, check_layers),
        }
        self._distinct: int | None = None

    # -- structure -----------------------------------------------------------------------------

    @property
    def num_blocks(self) -> int:
        """Number of searched blocks."""
        return len(self.base)

    @property
    def decisions(self) -> tuple[Decision, ...]:
        """One :class:`Decision` per token, in token order."""
        return tuple(
            Decision(block, name, self.options[name])
            for block in range(self.num_blocks)
            for name in FIELDS
        )

    @property
    def num_options(self) -> tuple[int, ...]:
        """The number of options of each token (what a controller needs)."""
        return tuple(len(self.options[name]) for _ in self.base for name in FIELDS)

    @property
    def choices_per_block(self) -> int:
        """Number of token combinations of one block (288 with the defaults)."""
        return math.prod(len(self.options[name]) for name in FIELDS)

    @property
    def size(self) -> int:
        """Number of token sequences: the product of all option counts (the paper's count)."""
        return int(self.choices_per_block**self.num_blocks)

    def distinct_size(self) -> int:
        """Number of distinct networks (resolved block plans) in the space, counted exactly.

        Lower than :attr:`size` where choices coincide (see the class notes). Counted block by
        block, keyed by the width flowing in, so it costs ``blocks x choices x widths`` plan
        resolutions (well under a second for the default space) and is cached.
        """
        if self._distinct is None:
            self._distinct = self._count_distinct()
        return self._distinct

    def _count_distinct(self) -> int:
        # counts[c] = number of distinct network prefixes whose last block outputs c channels.
        # A block's resolved plans include its output width, so distinct prefixes extended by
        # distinct block plans stay distinct, and the width is all a prefix passes on.
        counts: dict[int, int] = {self.stem_channels: 1}
        for index in range(self.num_blocks):
            following: dict[int, int] = defaultdict(int)
            for in_channels, count in counts.items():
                plans: set[tuple[BlockPlan, ...]] = set()
                for choice in self._block_choices():
                    stage = self._stage(index, choice)
                    probe = NetworkSpec("probe", stem_channels=in_channels, stages=(stage,))
                    plans.add(resolve_plan(probe).stages[0])
                for plan in plans:
                    following[plan[-1].out_channels] += count
            counts = dict(following)
        return sum(counts.values())

    def _block_choices(self) -> list[BlockChoice]:
        o = self.options
        return [
            BlockChoice(op, kernel, se, skip, mult, delta)
            for op in o["op"]
            for kernel in o["kernel"]
            for se in o["se_ratio"]
            for skip in o["skip"]
            for mult in o["filters"]
            for delta in o["layers"]
        ]

    # -- tokens and choices --------------------------------------------------------------------

    def sample(self, rng: random.Random) -> tuple[int, ...]:
        """Draw a token sequence uniformly at random from ``rng``."""
        if not isinstance(rng, random.Random):
            raise ArgumentTypeError(f"rng must be a random.Random, got {type(rng).__name__}.")
        return tuple(rng.randrange(n) for n in self.num_options)

    def check_tokens(self, tokens: object) -> tuple[int, ...]:
        """Return ``tokens`` as a tuple after checking its length and every index's range.

        Raises:
            ArgumentTypeError: not a sequence of ints.
            InvalidArgumentError: wrong length, or an index outside its decision's options.
        """
        if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Sequence):
            raise ArgumentTypeError(
                f"tokens must be a tuple or list of ints, got {type(tokens).__name__}."
            )
        expected = len(self.decisions)
        if len(tokens) != expected:
            raise InvalidArgumentError(
                f"tokens must hold {expected} indices ({self.num_blocks} blocks x {len(FIELDS)}"
                f" decisions {FIELDS}), got {len(tokens)}."
            )
        for position, (token, decision) in enumerate(zip(tokens, self.decisions, strict=True)):
            if isinstance(token, bool) or not isinstance(token, int):
                raise ArgumentTypeError(
                    f"tokens[{position}] must be an int, got {type(token).__name__} {token!r}."
                )
            if not 0 <= token < len(decision.options):
                raise InvalidArgumentError(
                    f"tokens[{position}] (block {decision.block} {decision.field!r}) must be in"
                    f" 0..{len(decision.options) - 1} for options {decision.options}, got {token}."
                )
        return tuple(tokens)

    def decode(self, tokens: Sequence[int]) -> tuple[BlockChoice, ...]:
        """Turn a token sequence into one :class:`BlockChoice` per block."""
        tokens = self.check_tokens(tokens)
        width = len(FIELDS)
        return tuple(
            BlockChoice(
                *(self.options[name][tokens[block * width + i]] for i, name in enumerate(FIELDS))
            )
            for block in range(self.num_blocks)
        )

    def encode(self, choices: Sequence[BlockChoice]) -> tuple[int, ...]:
        """Turn one :class:`BlockChoice` per block into tokens (the inverse of :meth:`decode`).

        Raises:
            InvalidArgumentError: wrong number of choices, or a value that is not an option.
            ArgumentTypeError: an item is not a :class:`BlockChoice`.
        """
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            raise ArgumentTypeError(
                f"choices must be a tuple of BlockChoice, got {type(choices).__name__}."
            )
        if len(choices) != self.num_blocks:
            raise InvalidArgumentError(
                f"choices must hold one BlockChoice per block ({self.num_blocks}),"
                f" got {len(choices)}."
            )
        tokens: list[int] = []
        for block, choice in enumerate(choices):
            if not isinstance(choice, BlockChoice):
                raise ArgumentTypeError(
                    f"choices[{block}] must be a BlockChoice, got {type(choice).__name__}."
                )
            for name in FIELDS:
                value = getattr(choice, name)
                tokens.append(self._index(block, name, value))
        return tuple(tokens)

    def _index(self, block: int, name: str, value: object) -> int:
        for index, option in enumerate(self.options[name]):
            # bool is an int in Python: keep True from matching a layers option 1, and so on.
            if isinstance(option, bool) == isinstance(value, bool) and option == value:
                return index
        raise InvalidArgumentError(
            f"Block {block} {name}={value!r} is not an option of this space; accepted values are"
            f" {self.options[name]}."
        )

    def base_tokens(self) -> tuple[int, ...]:
        """The tokens nearest to the skeleton itself (MobileNetV2 with the default base).

        Per block: the op closest to the base expansion (``"dconv"`` for expansion 1, which is
        exactly MobileNetV2's first block: depthwise 3x3 then a linear 1x1 projection; else the
        ``"mbE"`` with the nearest ``E``), and the options nearest to kernel 3, no SE, skips on,
        filters 1.0 and layers 0. With the default options every block is matched exactly.
        """
        from ._space_io import nearest_tokens

        return nearest_tokens(self)

    # -- specs ---------------------------------------------------------------------------------

    def _stage(self, index: int, choice: BlockChoice) -> StageSpec:
        block = self.base[index]
        kind, expansion = op_kind(choice.op)
        return StageSpec(
            kind,
            repeats=max(1, block.repeats + choice.layers),
            kernel=choice.kernel,
            stride=block.stride,
            expansion=expansion,
            out_channels=make_divisible(block.channels * choice.filters),
            se_ratio=choice.se_ratio,
            skip=choice.skip,
        )

    def to_spec(
        self, architecture: Sequence[int] | Sequence[BlockChoice], *, name: str = "searched"
    ) -> NetworkSpec:
        """Return the :class:`~mnaszoo.models.specs.NetworkSpec` of an architecture.

        Args:
            architecture: tokens, or one :class:`BlockChoice` per block.
            name: the spec's name.

        Raises:
            InvalidArgumentError: invalid tokens or choices (see :meth:`check_tokens`).
        """
        if (
            isinstance(architecture, Sequence)
            and architecture
            and all(isinstance(item, BlockChoice) for item in architecture)
        ):
            self.encode(architecture)  # type: ignore[arg-type]  # validates the values
            choices: tuple[BlockChoice, ...] = tuple(architecture)  # type: ignore[arg-type]
        else:
            choices = self.decode(architecture)  # type: ignore[arg-type]
        stages = tuple(self._stage(i, choice) for i, choice in enumerate(choices))
        return NetworkSpec(
            name,
            stem_channels=self.stem_channels,
            stages=stages,
            head_channels=self.head_channels,
            description="an architecture from mnaszoo.search.SearchSpace",
        )

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the space as JSON-ready data (the inverse of :meth:`from_dict`)."""
        return {
            "format": _SPACE_FORMAT,
            "base": [[b.expansion, b.channels, b.repeats, b.stride] for b in self.base],
            "stem_channels": self.stem_channels,
            "head_channels": self.head_channels,
            **{name: list(self.options[name]) for name in FIELDS},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Rebuild a space from :meth:`to_dict` data.

        Raises:
            InvalidArgumentError: unknown or missing keys, or invalid values.
        """
        from ._space_io import space_from_dict

        space: SearchSpace = space_from_dict(cls, data)
        return space

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def describe(self) -> str:
        """A few lines: the skeleton, the options, the size and the distinct size."""
        from ._space_io import describe_space

        return describe_space(self)

    def __repr__(self) -> str:
        return (
            f"SearchSpace(blocks={self.num_blocks}, tokens={len(self.decisions)},"
            f" size={self.choices_per_block}^{self.num_blocks}={self.size:.3e},"
            f" distinct={self.distinct_size():.3e})"
        )
