"""Shared test settings."""

from __future__ import annotations

import torch

# Two cores: keep intra-op threads fixed so timings and numerics do not depend on the machine.
torch.set_num_threads(2)


def assert_close_to_scale(actual: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    """Max absolute difference <= ``tol`` times the largest magnitude of ``expected``.

    Logit magnitudes vary with weights; relative-to-scale error is what changes predictions.
    """
    assert actual.shape == expected.shape
    scale = expected.abs().max().item()
    error = (actual.float() - expected.float()).abs().max().item()
    assert error <= tol * scale, f"max |diff| {error:.3g} > {tol:g} x scale {scale:.3g}"


# The loopback Hub/URL server with every manifest entry, for any test that asks for `served`.
from .support.served import served  # noqa: E402, F401
