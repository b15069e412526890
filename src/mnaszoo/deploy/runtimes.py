"""What runs a model: one name per runtime, and one factory of runners for all of them.

``predict``'s ``backend``, the benchmark's variants and the search's latency backends all name the
same runtimes (:data:`RUNTIMES`), and the benchmark and the search's latency measurements run
models through :func:`make_runner`, so a runtime means the same thing everywhere:

- ``"torch"``: the eager module.
- ``"torch-optimized"``: :func:`~mnaszoo.deploy.optimize.optimize_for_inference` (BatchNorm folded,
  ``channels_last``), fed ``channels_last`` input.
- ``"onnxruntime"``: exported to ONNX for a static input shape, run by onnxruntime.
- ``"onnxruntime-int8"``: :func:`~mnaszoo.deploy.quantization.quantize_int8` of the model
  (calibrated on random images: representative speed, not accuracy), run by onnxruntime.
- ``"executorch"``: an XNNPACK-delegated ExecuTorch program of the model
  (:func:`mnaszoo.export` with ``format="executorch"``), run by ExecuTorch's Python runtime with
  its thread pool set to ``threads`` (``mnaszoo[edge]``).
- ``"executorch-int8"``: the same, PT2E int8 (calibrated on random images).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from .._validate import check_choice
from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["LATENCY_BACKENDS", "QUICK_RUNTIMES", "RUNTIMES", "Runner", "Runtime", "make_runner"]

Runtime = Literal[
    "torch", "torch-optimized", "onnxruntime", "onnxruntime-int8", "executorch", "executorch-int8"
]
RUNTIMES: tuple[Runtime, ...] = get_args(Runtime)
"""Every runtime, in the order the benchmark reports them."""
QUICK_RUNTIMES: tuple[str, ...] = tuple(r for r in RUNTIMES if not r.startswith("executorch"))
LATENCY_BACKENDS: tuple[str, ...] = tuple(r for r in RUNTIMES if not r.endswith("-int8"))
"""The runtimes the search predicts latency for (its ``--latency-backend``): every float one."""
"""The runtimes a model is ready on in seconds (an ExecuTorch export takes minutes). This module
imports no torch until a runner is made, so the command line can list the names cheaply."""


@dataclass(frozen=True)
class Runner:
    """A model made ready on one runtime.

    Attributes:
        runtime: one of :data:`RUNTIMES`.
        prepare: turns an input tensor into what :attr:`run` takes (a NumPy array for
            onnxruntime, a ``channels_last`` tensor on the device for ``torch-optimized``); done
            once, outside any timed loop.
        run: one forward call on a prepared input; returns the runtime's output.
    """

    runtime: str
    prepare: Callable[[torch.Tensor], Any]
    run: Callable[[Any], Any]

    def __call__(self, x: torch.Tensor) -> Any:
        """Prepare ``x`` and run the model once."""
        return self.run(self.prepare(x))


def _torch_runner(model: nn.Module, runtime: str, device: str) -> Runner:
    import torch

    channels_last = runtime == "torch-optimized"
    if channels_last:
        from .optimize import optimize_for_inference

        model = optimize_for_inference(model)
    model = model.eval().to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return x.to(device).contiguous(memory_format=memory_format)

    def run(x: torch.Tensor) -> Any:
        with torch.inference_mode():
            return model(x)

    return Runner(runtime, prepare, run)


def _onnx_runner(
    model: nn.Module,
    runtime: str,
    example: torch.Tensor,
    workdir: Path,
    threads: int | None,
    device: str,
) -> Runner:
    import torch

    from ._calibration import MIN_CALIBRATION_IMAGES
    from ._onnx_export import export_onnx
    from .onnx_runtime import open_session

    cpu_model = model.to("cpu").eval()
    example = example.to("cpu")
    path = workdir / f"model_{id(model)}_{'x'.join(map(str, example.shape))}_{runtime}.onnx"
    if runtime == "onnxruntime-int8":
        from .quantization import quantize_int8

        generator = torch.Generator().manual_seed(0)
        calibration = torch.randn(MIN_CALIBRATION_IMAGES, *example.shape[1:], generator=generator)
        # Random weights and images: the speed is representative, the top-1 agreement is noise.
        quantize_int8(cpu_model, path, calibration, check_agreement=False)
    else:
        export_onnx(cpu_model, example, False, None, path)
    session = open_session(path, threads=threads, device=device)
    name = session.get_inputs()[0].name

    def prepare(x: torch.Tensor) -> Any:
        return x.detach().to("cpu").contiguous().numpy()

    def run(x: Any) -> Any:
        return session.run(None, {name: x})[0]

    return Runner(runtime, prepare, run)


def _executorch_runner(
    model: nn.Module, runtime: str, example: torch.Tensor, workdir: Path, threads: int | None
) -> Runner:
    import torch

    from ._calibration import MIN_CALIBRATION_IMAGES
    from .executorch import ExecuTorchModel, export_executorch

    cpu_model = model.to("cpu").eval()
    shape = tuple(example.shape)
    path = workdir / f"model_{id(model)}_{'x'.join(map(str, shape))}_{runtime}.pte"
    calibration = None
    if runtime == "executorch-int8":
        generator = torch.Generator().manual_seed(0)
        calibration = torch.randn(MIN_CALIBRATION_IMAGES, *shape[1:], generator=generator)
    export_executorch(
        cpu_model, path, input_size=(shape[2], shape[3]), batch=shape[0], calibration=calibration
    )
    program = ExecuTorchModel(path, threads=threads)

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return x.detach().to("cpu", torch.float32).contiguous()

    return Runner(runtime, prepare, program)


def make_runner(
    model: nn.Module,
    runtime: str,
    *,
    example: torch.Tensor,
    workdir: Path,
    threads: int | None = None,
    device: str = "cpu",
) -> Runner:
    """``model`` made ready to run on ``runtime`` for inputs shaped like ``example``.

    Args:
        model: a module in eval mode taking one ``(N, C, H, W)`` tensor. ``torch`` moves it to
            ``device``; ``onnxruntime`` moves it to the CPU to export it.
        runtime: one of :data:`RUNTIMES`.
        example: an input of the shape the runner will be called with (the ONNX graph is
            exported for that static shape).
        workdir: where exported files are written (the caller owns and removes it).
        threads: onnxruntime's intra-op threads (``None``: its default), or the size of
            ExecuTorch's (process-wide) thread pool; torch uses its own setting (see
            :func:`torch.set_num_threads`).
        device: ``"cpu"`` or ``"cuda"``.

    Raises:
        InvalidArgumentError: an unknown runtime.
        MnaszooError: an onnxruntime runtime without the ``onnx`` extra installed, an
            ExecuTorch runtime without the ``edge`` extra.
    """
    check_choice("runtime", runtime, RUNTIMES)
    if runtime in ("torch", "torch-optimized"):
        return _torch_runner(model, runtime, device)
    if runtime.startswith("executorch"):
        if device != "cpu":
            raise InvalidArgumentError(f"{runtime} runs on the CPU only, not {device!r}.")
        return _executorch_runner(model, runtime, example, workdir, threads)
    return _onnx_runner(model, runtime, example, workdir, threads, device)
