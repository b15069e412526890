"""The MnasNet architectures: spec tables, the resolved plan, the nn.Modules and their factories.

Data flows one way: a :class:`NetworkSpec` (typed rows) is resolved with the width and depth
multipliers into a plan (:mod:`.plan`), which the modules (:mod:`.mnasnet`), the counters
(:mod:`.counting`) and :func:`describe` all read. :func:`build` builds any spec;
:func:`mnaszoo.create`, which also loads weights, lives above ``models`` and ``weights``
(:mod:`mnaszoo.factory`). Nothing here reads or writes files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .architectures import (
        ARCHITECTURES as ARCHITECTURES,
        MNASNET_A1 as MNASNET_A1,
        MNASNET_B1 as MNASNET_B1,
        MNASNET_D1 as MNASNET_D1,
        MNASNET_D1_320 as MNASNET_D1_320,
        MNASNET_SMALL as MNASNET_SMALL,
    )
    from .codec import (
        decode_block as decode_block,
        decode_stages as decode_stages,
        encode_block as encode_block,
        encode_stages as encode_stages,
    )
    from .config import ModelConfig as ModelConfig
    from .diagram import draw as draw
    from .factory import build as build
    from .mnasnet import (
        FeatureInfo as FeatureInfo,
        MnasNet as MnasNet,
        MnasNetFeatures as MnasNetFeatures,
    )
    from .registry import list_models as list_models
    from .specs import BlockKind as BlockKind, NetworkSpec as NetworkSpec, StageSpec as StageSpec
    from .summary import describe as describe

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".architectures": (
            "ARCHITECTURES",
            "MNASNET_A1",
            "MNASNET_B1",
            "MNASNET_D1",
            "MNASNET_D1_320",
            "MNASNET_SMALL",
        ),
        ".codec": (
            "decode_block",
            "decode_stages",
            "encode_block",
            "encode_stages",
        ),
        ".config": ("ModelConfig",),
        ".diagram": ("draw",),
        ".factory": ("build",),
        ".mnasnet": (
            "FeatureInfo",
            "MnasNet",
            "MnasNetFeatures",
        ),
        ".registry": ("list_models",),
        ".specs": (
            "BlockKind",
            "NetworkSpec",
            "StageSpec",
        ),
        ".summary": ("describe",),
    },
)
