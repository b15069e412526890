"""A latency measurement kit for a target device: block models plus a self-contained runner.

``mnaszoo latency-kit KIT/`` (:func:`write_latency_kit`) writes every layer the in-context
latency table (:mod:`.context_table`) can need for a search space, each as a small ONNX model
(weights as ``ConstantOfShape`` nodes, so the whole kit is a few megabytes), a few calibration
networks, ``manifest.json`` and ``measure.py``: a script that needs only Python, numpy and
onnxruntime (no mnaszoo, no torch). Copy the folder to the device and run
``python measure.py``; it writes ``table.json``, which ``mnaszoo search --table table.json``
(or :meth:`ContextLatencyTable.load
<mnaszoo.search.latency.context_table.ContextLatencyTable.load>`)
reads. The table records the runtime and its version, the threads, the clock, the device's CPU
and the spread of every measurement.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..._io import check_directory_target, replace_directory
from ..._validate import check_bool, check_choice, check_float, check_int, renamed_input_size
from ...errors import ArgumentTypeError
from ...models.counting import conv_output_size
from ...models.plan import resolve_plan
from ...models.specs import NetworkSpec
from ..space import SearchSpace
from ._runners import layer_onnx
from .calibration import CALIBRATION_NETWORKS
from .context_layers import ContextLayer, context_layers
from .onnx_blocks import network_graph
from .reference import reference_plan

__all__ = ["KIT_BACKENDS", "KIT_FORMAT", "space_layers", "write_latency_kit"]

KIT_FORMAT = "mnaszoo-latency-kit"
RUNNER = "measure.py"
_KIND = "a latency kit"


def space_layers(
    space: SearchSpace, image_size: int, batch_size: int, num_classes: int
) -> list[ContextLayer]:
    """Every distinct layer (stem, blocks, head) any network of ``space`` can have.

    Block by block, keyed by the width flowing in, as
    :meth:`~mnaszoo.search.space.SearchSpace.distinct_size` counts networks: the default space
    has 1,376 distinct layers at 224 pixels.
    """
    found: dict[str, ContextLayer] = {}
    base = resolve_plan(space.to_spec(space.base_tokens()))
    stem = context_layers(base, image_size, batch_size, num_classes)[0]
    found[stem.key] = stem
    size = conv_output_size(image_size, 3, 2)
    widths = {space.stem_channels}
    for index in range(space.num_blocks):
        following: set[int] = set()
        for width in sorted(widths):
            for choice in space._block_choices():
                # A probe: the block alone after a stem of the incoming width, at twice the
                # block's input resolution (the stride-2 stem halves it back).
                stage = space._stage(index, choice)
                probe = NetworkSpec("probe", stem_channels=width, stages=(stage,))
                layers = context_layers(resolve_plan(probe), 2 * size, batch_size, num_classes)
                for layer in layers[1:-1]:
                    found.setdefault(layer.key, layer)
                following.add(layers[-2].block.out_channels)  # type: ignore[union-attr]
                if index == space.num_blocks - 1:
                    found.setdefault(layers[-1].key, layers[-1])
        size = conv_output_size(size, 3, space.base[index].stride)
        widths = following
    return list(found.values())


KIT_BACKENDS: tuple[str, ...] = ("onnxruntime", "executorch")
"""The runtimes a kit can be measured with on a device."""
_NEEDS = {
    "onnxruntime": "numpy and onnxruntime; no torch",
    "executorch": "ExecuTorch's Python runtime, pip install executorch",
}


def _writers(backend: str) -> tuple[Callable[[Any], bytes], Callable[..., bytes], str]:
    """How a layer and a calibration network are written for ``backend``, and the suffix."""
    if backend == "executorch":
        from .executorch_blocks import layer_pte, network_pte

        return layer_pte, network_pte, ".pte"

    def network(plan: Any, image_size: int, num_classes: int, batch_size: int) -> bytes:
        return network_graph(plan, image_size, num_classes, batch_size=batch_size)

    return layer_onnx, network, ".onnx"


def _runner_source() -> str:
    return Path(__file__).with_name("_kit_runner.py").read_text(encoding="utf-8")


def write_latency_kit(
    kit: str | os.PathLike[str],
    *,
    space: SearchSpace | None = None,
    input_size: int | None = None,
    batch_size: int = 1,
    num_classes: int = 1000,
    threads: int = 1,
    calibration: int = CALIBRATION_NETWORKS,
    max_spread: float = 0.2,
    overwrite: bool = False,
    backend: str = "onnxruntime",
    image_size: int | None = None,
) -> Path:
    """Write a latency measurement kit for ``space`` into the folder ``kit``.

    Args:
        kit: the folder to create (it must not exist, or be empty, unless ``overwrite``).
        space: the search space (default: :class:`~mnaszoo.search.space.SearchSpace`).
        input_size: the resolution the device will run the networks at (224).
        batch_size: images per call.
        num_classes: classifier outputs of the searched networks.
        threads: intra-op threads the runner uses by default (``--threads`` overrides).
        calibration: random networks of the space measured end to end (>= 3) to calibrate.
        max_spread: the runner's default limit on ``(p90 - p10) / median``.
        overwrite: replace an existing kit folder.
        backend: the runtime the device runs: ``"onnxruntime"`` (``.onnx`` models; the runner
            needs numpy and onnxruntime) or ``"executorch"`` (XNNPACK ``.pte`` programs as
            :func:`mnaszoo.export` writes them; the runner needs ExecuTorch's Python runtime,
            ``executorch.runtime``). Lowering a layer to ExecuTorch takes seconds, so an
            executorch kit of a whole space takes long to write; lowered layers are cached
            (:mod:`.executorch_blocks`).
        image_size: deprecated spelling of ``input_size`` (warns; goes in the next release).

    Returns:
        The kit folder: ``manifest.json``, ``measure.py``, ``blocks/*.onnx``,
        ``networks/*.onnx``, ``README.txt``.

    Raises:
        InvalidArgumentError: an out-of-range argument, ``kit`` exists and is not empty, or both
            ``input_size`` and ``image_size`` were given.
        MnaszooError: onnx is not installed (``pip install 'mnaszoo[onnx]'``), or ExecuTorch
            for an executorch kit (``pip install 'mnaszoo[edge]'``).

    Example:
        >>> write_latency_kit("kit")  # doctest: +SKIP
    """
    space = SearchSpace() if space is None else space
    if not isinstance(space, SearchSpace):
        raise ArgumentTypeError(f"space must be a SearchSpace, got {type(space).__name__}.")
    size = renamed_input_size(input_size, image_size)
    check_int("input_size", size, minimum=16)
    check_int("batch_size", batch_size, minimum=1)
    check_int("num_classes", num_classes, minimum=0)
    check_int("threads", threads, minimum=1)
    check_int("calibration", calibration, minimum=3)
    check_float("max_spread", max_spread, minimum=0.0, min_inclusive=False)
    check_bool("overwrite", overwrite)
    check_choice("kit backend", backend, KIT_BACKENDS)
    layer_file, network_file, suffix = _writers(backend)
    target = Path(os.fspath(kit))
    # Only an earlier kit is ever replaced (its own files); any other folder must be empty.
    check_directory_target(target, kind=_KIND, owned=kit_files, exclusive=True, overwrite=overwrite)
    from .open import sample_specs

    layers = space_layers(space, size, batch_size, num_classes)
    networks = sample_specs(space, calibration, "mnaszoo-latency-kit", "calibration")

    def fill(work: Path) -> None:  # a staging folder: a kit is complete or absent
        (work / "blocks").mkdir()
        (work / "networks").mkdir()
        entries: list[dict[str, Any]] = []
        for number, layer in enumerate(layers):
            name = f"blocks/{layer.kind}_{number:04d}{suffix}"
            (work / name).write_bytes(layer_file(layer))
            entries.append({"key": layer.key, "file": name, "input_shape": list(layer.shape)})
        whole: list[dict[str, Any]] = []
        for spec in networks:
            plan = resolve_plan(spec)
            name = f"networks/{spec.name}{suffix}"
            (work / name).write_bytes(network_file(plan, size, num_classes, batch_size))
            keys = [x.key for x in context_layers(plan, size, batch_size, num_classes)]
            shape = [batch_size, 3, size, size]
            whole.append({"name": spec.name, "file": name, "input_shape": shape, "keys": keys})
        # The yardstick every chunk of blocks is timed beside (see measure.py's Runner.measure).
        reference: dict[str, Any] = {
            "name": "reference",
            "file": f"networks/reference{suffix}",
            "input_shape": [batch_size, 3, size, size],
        }
        plan = reference_plan()
        (work / reference["file"]).write_bytes(network_file(plan, size, num_classes, batch_size))
        settings = {
            "space": space.to_dict(),
            "image_size": size,  # the manifest key kits have always had
            "batch_size": batch_size,
            "num_classes": num_classes,
        }
        identity = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        manifest = {
            "format": KIT_FORMAT,
            "version": 1,
            "runtime": backend,
            "kit": {"id": identity, **{k: v for k, v in settings.items() if k != "space"}},
            "space": settings["space"],
            "threads": threads,
            "max_spread": max_spread,
            "entries": entries,
            "calibration": whole,
            "reference": reference,
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
        (work / RUNNER).write_text(_runner_source(), encoding="utf-8")
        readme = _README.format(count=len(entries), needs=_NEEDS[backend])
        (work / "README.txt").write_text(readme, encoding="utf-8")

    replace_directory(
        target,
        fill,
        kind=_KIND,
        owned=kit_files,
        exclusive=True,
        overwrite=overwrite,
        order=("manifest.json",),
    )
    return target


def kit_files(folder: Path) -> set[str] | None:
    """The files of the kit in ``folder`` (as its manifest lists them), or ``None`` if
    ``folder`` holds no kit. A ``table.json`` measured on a device is not among them: it is
    kept when the kit is replaced."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
        if manifest.get("format") != KIT_FORMAT:
            return None
        reference = manifest.get("reference")  # kits written before it had none
        listed = [
            e["file"]
            for e in [
                *manifest["entries"],
                *manifest["calibration"],
                *([reference] if reference else []),
            ]
        ]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    files = {"manifest.json", RUNNER, "README.txt"}
    return files | {name for name in listed if isinstance(name, str)}


_README = """mnaszoo latency kit: {count} block models and the calibration networks of a space.

On the target device (Python 3.9+ with {needs}; no mnaszoo):

    python measure.py                 # writes table.json next to this file
    python measure.py --threads 4     # another thread count; --help for all options

Then, where you search:

    mnaszoo search OUTPUT --data DIR --table table.json
"""
