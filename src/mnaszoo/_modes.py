"""Train/eval mode, saved and restored module by module.

``model.train(flag)`` sets one flag on every submodule, so restoring a model with it after an
eval-mode run loses a part the caller had kept in eval mode on purpose (a frozen BatchNorm in a
model being fine-tuned). :func:`eval_mode` records every module's own flag and puts each back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode for the block; afterwards every module's ``training`` flag is what
    it was before, whatever happened in the block.

    The flags are written back directly, not through ``train()``: a module whose ``train()`` is
    overridden (a frozen part that always stays in eval mode) gets its own flag back too.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in flags:
            module.training = training
