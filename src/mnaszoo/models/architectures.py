"""The MnasNet family as spec tables, one row per stage as in the paper's figures.

Sources: TF ``tensorflow/tpu`` ``models/official/mnasnet/mnasnet_models.py`` (the authors'
reference), timm ``efficientnet.py`` (``semnasnet_*`` = A1, ``mnasnet_*`` = B1, ``mnasnet_small``)
and torchvision ``mnasnet.py`` (B1). Where they disagree, the tables follow the implementation whose
published weights mnaszoo loads; each table's docstring says where that departs from TF.
"""

from __future__ import annotations

from types import MappingProxyType

from .specs import BlockKind, NetworkSpec, StageSpec

__all__ = [
    "ARCHITECTURES",
    "MNASNET_A1",
    "MNASNET_B1",
    "MNASNET_B1_TORCHVISION_V1",
    "MNASNET_D1",
    "MNASNET_D1_320",
    "MNASNET_SMALL",
]

DS, MB = BlockKind.DS, BlockKind.MB
S = StageSpec

MNASNET_A1 = NetworkSpec(
    name="mnasnet_a1",
    description="MnasNet-A1, the paper's headline model (with squeeze-and-excitation)",
    stem_channels=32,
    stages=(
        # kind r  k  s  e  out  se
        S(DS, 1, 3, 1, 1, 16, skip=False),
        S(MB, 2, 3, 2, 6, 24),
        S(MB, 3, 5, 2, 3, 40, se_ratio=0.25),
        S(MB, 4, 3, 2, 6, 80),
        S(MB, 2, 3, 1, 6, 112, se_ratio=0.25),
        S(MB, 3, 5, 2, 6, 160, se_ratio=0.25),
        S(MB, 1, 3, 1, 6, 320),
    ),
)
"""MnasNet-A1 (paper Fig. 7(a); TF ``mnasnet-a1``; timm ``semnasnet_*``).

SE widths are ``round(block input * 0.25)`` as in timm; TF truncates (``int``), which differs only
for widths where ``input * 0.25`` is not an integer. BatchNorm eps is 1e-5 as in the PyTorch
weights (TF uses 1e-3)."""

MNASNET_B1 = NetworkSpec(
    name="mnasnet_b1",
    description="MnasNet-B1, the variant without squeeze-and-excitation (torchvision's MNASNet)",
    stem_channels=32,
    stages=(
        # kind r  k  s  e  out
        S(DS, 1, 3, 1, 1, 16, skip=False),
        S(MB, 3, 3, 2, 3, 24),
        S(MB, 3, 5, 2, 3, 40),
        S(MB, 3, 5, 2, 6, 80),
        S(MB, 2, 3, 1, 6, 96),
        S(MB, 4, 5, 2, 6, 192),
        S(MB, 1, 3, 1, 6, 320, skip=False),
    ),
)
"""MnasNet-B1 (TF ``mnasnet-b1``; timm ``mnasnet_*``; torchvision ``mnasnet*``), identical in all
three at width 1.0."""

MNASNET_B1_TORCHVISION_V1 = MNASNET_B1.replace(
    name="mnasnet_b1_torchvision_v1",
    description="MnasNet-B1 as torchvision's version-1 MNASNet: a 32/16-channel stem at any width",
    fixed_stem=True,
)
"""MnasNet-B1 with torchvision's version-1 stem (before torchvision 0.5): the stem convolution and
the first (depthwise-separable) stage keep 32 and 16 channels whatever the width multiplier.
Checkpoints saved with ``_metadata`` version 1 at a width other than 1.0 need it; at width 1.0 it
equals :data:`MNASNET_B1`. Not registered as a model name: the torchvision converter selects it."""

MNASNET_SMALL = NetworkSpec(
    name="mnasnet_small",
    description="MnasNet-small, a 2M-parameter model with an 8-channel stem",
    stem_channels=8,
    stages=(
        # kind r  k  s  e  out  se
        S(DS, 1, 3, 1, 1, 8),
        S(MB, 1, 3, 2, 3, 16),
        S(MB, 2, 3, 2, 6, 16),
        S(MB, 4, 5, 2, 6, 32, se_ratio=0.25),
        S(MB, 3, 3, 1, 6, 32, se_ratio=0.25),
        S(MB, 3, 5, 2, 6, 88, se_ratio=0.25),
        S(MB, 1, 3, 1, 6, 144),
    ),
)
"""MnasNet-small (TF ``mnasnet-small``; timm ``mnasnet_small``).

Departs from TF on purpose: the first block has an identity residual, as in timm, whose weights
exist. TF decides residuals on the *declared* input width, and its block string
``r1_k3_s11_e1_i16_o8`` declares 16 input channels although the stem gives 8, so TF's first block
has no residual. Both have the same parameters, but compute different functions."""

MNASNET_D1 = NetworkSpec(
    name="mnasnet_d1",
    description="MnasNet-D1, the MnasFPN detection backbone (TF only, no public weights)",
    stem_channels=32,
    bn_eps=1e-3,
    se_rounding="floor",
    stages=(
        # kind r  k  s  e  out
        S(MB, 1, 3, 1, 9, 24),
        S(MB, 3, 3, 2, 9, 36),
        S(MB, 5, 3, 2, 9, 48),
        S(MB, 4, 5, 2, 9, 96),
        S(MB, 5, 7, 1, 3, 96),
        S(MB, 3, 3, 2, 9, 80),
        S(MB, 1, 7, 1, 6, 320, skip=False),
    ),
)
"""MnasNet-D1 (TF ``mnasnet-d1``). Follows TF throughout (BatchNorm eps 1e-3); its 36-channel
stage is kept as is at width 1.0, as TF does."""

MNASNET_D1_320 = NetworkSpec(
    name="mnasnet_d1_320",
    description="MnasNet-D1-320, the MnasFPN backbone searched at 320 px (TF only)",
    stem_channels=32,
    bn_eps=1e-3,
    se_rounding="floor",
    stages=(
        # kind r  k  s  e  out
        S(MB, 3, 5, 1, 6, 24),
        S(MB, 4, 7, 2, 9, 36),
        S(MB, 5, 5, 2, 9, 48),
        S(MB, 5, 7, 2, 6, 96),
        S(MB, 5, 3, 1, 9, 144),
        S(MB, 5, 5, 2, 6, 160),
        S(MB, 1, 7, 1, 9, 320),
    ),
)
"""MnasNet-D1-320 (TF ``mnasnet-d1-320``), following TF throughout."""

ARCHITECTURES = MappingProxyType(
    {
        spec.name: spec
        for spec in (MNASNET_A1, MNASNET_B1, MNASNET_SMALL, MNASNET_D1, MNASNET_D1_320)
    }
)
"""Every base table by name (read-only)."""
