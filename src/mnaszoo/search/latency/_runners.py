"""No-argument callables that run one layer, or one whole network, the way a backend runs it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ...models.plan import NetworkPlan
from .context_layers import layer_module
from .onnx_blocks import block_graph, head_graph, network_graph, stem_graph

Call = Callable[[], object]


def ort_call(model: bytes, shape: tuple[int, ...], threads: int) -> Call:
    """An onnxruntime session (all graph optimisations, ``threads`` intra-op threads) on a fixed
    random input."""
    from ...deploy.onnx_runtime import import_onnxruntime

    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    example = torch.randn(shape, generator=torch.Generator().manual_seed(0)).numpy()
    feed = {session.get_inputs()[0].name: example}
    return lambda: session.run(None, feed)


def torch_call(module: nn.Module, shape: tuple[int, ...], optimized: bool) -> Call:
    """Eager ``module`` (or its :func:`mnaszoo.optimize_for_inference` copy, fed
    ``channels_last``) under inference mode on a fixed random input."""
    from ...deploy.optimize import optimize_for_inference

    module = module.eval()
    example = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    if optimized:
        module = optimize_for_inference(module)
        example = example.contiguous(memory_format=torch.channels_last)

    def run() -> object:
        with torch.inference_mode():
            return module(example)

    return run


def _torch_layer(layer: Any) -> nn.Module:
    module: nn.Module = layer_module(layer)
    return module


def layer_onnx(layer: Any) -> bytes:
    """The layer's ONNX graph (``ConstantOfShape`` weights), as the kit writes it."""
    if layer.kind == "stem":
        return stem_graph(layer.channels[0], layer.channels[1], layer.shape)
    if layer.kind == "head":
        last, head, classes = layer.channels
        return head_graph(last, head, classes, layer.shape)
    return block_graph(layer.block, layer.shape)


def layer_call(layer: Any, backend: str, threads: int) -> Call:
    """Run one :class:`~mnaszoo.search.latency.context_table.ContextLayer` on ``backend``."""
    if backend == "onnxruntime":
        return ort_call(layer_onnx(layer), layer.shape, threads)
    if backend == "executorch":
        from .executorch_blocks import layer_pte, pte_call

        return pte_call(layer_pte(layer), layer.shape, threads)
    with torch.random.fork_rng(devices=[]):
        module = _torch_layer(layer)
    return torch_call(module, layer.shape, backend == "torch-optimized")


def network_call(
    plan: NetworkPlan,
    backend: str,
    image_size: int,
    batch_size: int,
    num_classes: int,
    threads: int,
) -> Call:
    """Run a whole network on ``backend`` end to end."""
    shape = (batch_size, 3, image_size, image_size)
    if backend == "onnxruntime":
        return ort_call(
            network_graph(plan, image_size, num_classes, batch_size=batch_size), shape, threads
        )
    if backend == "executorch":
        from .executorch_blocks import network_pte, pte_call

        return pte_call(network_pte(plan, image_size, num_classes, batch_size), shape, threads)
    from ...models.factory import build

    with torch.random.fork_rng(devices=[]):
        model = build(
            plan.spec,
            width_mult=plan.width_mult,
            depth_mult=plan.depth_mult,
            num_classes=num_classes,
        )
    return torch_call(model, shape, backend == "torch-optimized")
