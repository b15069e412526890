"""What users do with a model: :func:`predict`, :func:`evaluate`, :func:`train` (see
:mod:`mnaszoo.tasks.training`), and the fine-tuning helpers of :mod:`mnaszoo.tasks.finetune`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .evaluation import EvaluationResult as EvaluationResult, evaluate as evaluate
    from .prediction import Prediction as Prediction, predict as predict
    from .training.loop import TrainResult as TrainResult, train as train
    from .training.recipes import Recipe as Recipe

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".evaluation": (
            "EvaluationResult",
            "evaluate",
        ),
        ".prediction": (
            "Prediction",
            "predict",
        ),
        ".training.loop": (
            "TrainResult",
            "train",
        ),
        ".training.recipes": ("Recipe",),
    },
)
