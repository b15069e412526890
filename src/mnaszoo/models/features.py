"""Feature levels and :class:`FeatureInfo`, the object timm's ``feature_info`` is.

Downstream libraries (segmentation_models_pytorch, detection wrappers) ask a backbone's
``feature_info`` for ``channels()``, ``reduction()``, ``module_name()`` and ``get_dicts()``;
:class:`FeatureInfo` answers them with timm's semantics, and is also the tuple of the selected
:class:`FeatureLevel` entries, so iterating and indexing keep giving levels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ArgumentTypeError, InvalidArgumentError

__all__ = ["FeatureInfo", "FeatureLevel"]


@dataclass(frozen=True)
class FeatureLevel:
    """One feature level: the output of ``module``, ``num_chs`` channels at stride ``reduction``.

    ``stage`` is the stage index whose last block produces it (-1 for the stem).
    """

    module: str
    stage: int
    num_chs: int
    reduction: int

    def to_dict(self, index: int) -> dict[str, Any]:
        """timm's dict for this level: ``stage`` counts the stem as 0, as timm's does."""
        return {
            "num_chs": self.num_chs,
            "reduction": self.reduction,
            "module": self.module,
            "stage": self.stage + 1,
            "index": index,
        }


class FeatureInfo(tuple[FeatureLevel, ...]):
    """The selected feature levels (a tuple), answering timm's ``FeatureInfo`` methods.

    As in timm, the methods without ``idx`` answer for the selected levels (``out_indices``), and
    an ``idx`` counts over *all* levels of the network (0 = stride 2 ... 4 = stride 32).

    Example:
        >>> import mnaszoo
        >>> backbone = mnaszoo.create("mnasnet_a1", features_only=True, out_indices=(2, 3, 4))
        >>> backbone.feature_info.channels(), backbone.feature_info.reduction()
        ([40, 112, 320], [8, 16, 32])
        >>> backbone.feature_info.module_name(0)
        'stages.0'
    """

    levels: tuple[FeatureLevel, ...]
    out_indices: tuple[int, ...]

    def __new__(cls, levels: Sequence[FeatureLevel], out_indices: Iterable[int] | None = None):  # type: ignore[no-untyped-def]
        levels = tuple(levels)
        indices = tuple(range(len(levels))) if out_indices is None else tuple(out_indices)
        self = super().__new__(cls, (levels[i] for i in indices))
        self.levels = levels
        self.out_indices = indices
        return self

    def __getnewargs__(self) -> tuple[Any, ...]:  # copy/pickle rebuild it with its levels
        return (self.levels, self.out_indices)

    def _index(self, idx: int) -> int:
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise ArgumentTypeError(f"idx must be an int, got {type(idx).__name__} {idx!r}.")
        count = len(self.levels)
        if not -count <= idx < count:
            raise InvalidArgumentError(
                f"idx {idx} is out of range: this network has {count} feature levels"
                f" (0..{count - 1}, or negative from the end)."
            )
        return idx % count

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> Any:
        """Values of ``key`` (``num_chs``, ``reduction``, ``module``, ``stage``, ``index``): of
        the selected levels, of level ``idx``, or of each level in ``idx``."""
        if idx is None:
            return [self.levels[i].to_dict(i)[key] for i in self.out_indices]
        if isinstance(idx, (list, tuple)):
            return [self.levels[j].to_dict(j)[key] for j in (self._index(i) for i in idx)]
        j = self._index(idx)  # type: ignore[arg-type]
        return self.levels[j].to_dict(j)[key]

    def get_dicts(
        self, keys: Sequence[str] | None = None, idx: int | Sequence[int] | None = None
    ) -> Any:
        """timm's dicts (``num_chs``, ``reduction``, ``module``, ``stage``, ``index``), optionally
        restricted to ``keys``, for the selected levels, level ``idx``, or the levels in it."""

        def one(j: int) -> dict[str, Any]:
            data = self.levels[j].to_dict(j)
            return data if keys is None else {k: data[k] for k in keys}

        if idx is None:
            return [one(i) for i in self.out_indices]
        if isinstance(idx, (list, tuple)):
            return [one(self._index(i)) for i in idx]
        return one(self._index(idx))  # type: ignore[arg-type]

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        """Channels of the selected levels (a list), or of level ``idx``."""
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        """Strides of the selected levels (a list), or of level ``idx``."""
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        """Names of the modules producing the selected levels (a list), or level ``idx``'s."""
        return self.get("module", idx)
