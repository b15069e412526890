"""mnaszoo: the MnasNet family for PyTorch, exact to the published architectures.

The package has one sub-package per part, each the documented home of its public names:
:mod:`mnaszoo.models` (specs, modules, factories), :mod:`mnaszoo.weights` (manifest, downloads,
conversion, checkpoints), :mod:`mnaszoo.data` (images, transforms, labels), :mod:`mnaszoo.tasks`
(predict, evaluate, fine-tuning), :mod:`mnaszoo.deploy` (folding, export, onnxruntime, int8,
benchmark) and :mod:`mnaszoo.search` (the architecture search). :mod:`mnaszoo.factory`, above
``models`` and ``weights``, joins them: :func:`create` and :func:`from_pretrained`. The most used
names are also here, the same objects: ``mnaszoo.build is mnaszoo.models.build``.

``import mnaszoo`` is light: it imports no torch; each name's module loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import data, deploy, models, tasks, weights
from ._version import __version__ as __version__
from .errors import (
    AccessDeniedError as AccessDeniedError,
    ArgumentTypeError as ArgumentTypeError,
    CacheNotWritableError as CacheNotWritableError,
    CorruptCheckpointError as CorruptCheckpointError,
    CorruptFileError as CorruptFileError,
    DownloadError as DownloadError,
    IncompatibleWeightsError as IncompatibleWeightsError,
    IntegrityError as IntegrityError,
    InvalidArgumentError as InvalidArgumentError,
    InvalidImageError as InvalidImageError,
    ManifestError as ManifestError,
    MnaszooError as MnaszooError,
    RemoteFileNotFoundError as RemoteFileNotFoundError,
    SpecError as SpecError,
    UnknownModelError as UnknownModelError,
    UnknownWeightsError as UnknownWeightsError,
    WeightsError as WeightsError,
    WeightsNotCachedError as WeightsNotCachedError,
    WriteError as WriteError,
)

if TYPE_CHECKING:  # the same names for type checkers and the docs; a test keeps them equal
    from .data import (
        ClassFolders as ClassFolders,
        ImageTransform as ImageTransform,
        load_image as load_image,
        load_images as load_images,
        make_transform as make_transform,
        scan_class_folders as scan_class_folders,
        scan_files as scan_files,
    )
    from .deploy import (
        ExecuTorchModel as ExecuTorchModel,
        OnnxRuntimeModel as OnnxRuntimeModel,
        export as export,
        optimize_for_inference as optimize_for_inference,
        quantize_int8 as quantize_int8,
    )
    from .factory import create as create, from_pretrained as from_pretrained
    from .models import (
        ARCHITECTURES as ARCHITECTURES,
        MNASNET_A1 as MNASNET_A1,
        MNASNET_B1 as MNASNET_B1,
        MNASNET_D1 as MNASNET_D1,
        MNASNET_D1_320 as MNASNET_D1_320,
        MNASNET_SMALL as MNASNET_SMALL,
        BlockKind as BlockKind,
        FeatureInfo as FeatureInfo,
        MnasNet as MnasNet,
        MnasNetFeatures as MnasNetFeatures,
        ModelConfig as ModelConfig,
        NetworkSpec as NetworkSpec,
        StageSpec as StageSpec,
        build as build,
        decode_block as decode_block,
        decode_stages as decode_stages,
        describe as describe,
        draw as draw,
        encode_block as encode_block,
        encode_stages as encode_stages,
        list_models as list_models,
    )
    from .tasks import (
        EvaluationResult as EvaluationResult,
        Prediction as Prediction,
        Recipe as Recipe,
        TrainResult as TrainResult,
        evaluate as evaluate,
        predict as predict,
        train as train,
    )
    from .weights import (
        Preprocessing as Preprocessing,
        WeightsRecord as WeightsRecord,
        get_weights as get_weights,
        list_weights as list_weights,
        push_to_hub as push_to_hub,
        save_pretrained as save_pretrained,
    )


# Every public name of the sub-packages is also a top-level name; the sub-package is its home.
_HOMES: dict[str, Any] = {
    name: part for part in (models, weights, data, tasks, deploy) for name in part.__all__
}
# create and from_pretrained join models and weights, so their module sits above both.
_FACTORY_NAMES = ("create", "from_pretrained")
_ERRORS = [name for name in dir() if name.endswith("Error")]

__all__ = sorted([*_HOMES, *_FACTORY_NAMES, *_ERRORS, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _FACTORY_NAMES:
        from . import factory

        value = getattr(factory, name)
        globals()[name] = value
        return value
    part = _HOMES.get(name)
    if part is None:
        raise AttributeError(f"module 'mnaszoo' has no attribute {name!r}")
    value = getattr(part, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
