"""Small ONNX graphs of single blocks (and whole networks), as onnxruntime runs them after export.

The in-context latency table and the device measurement kit time each block of a network as its
own ONNX model: the block's whole op sequence (expansion, depthwise, squeeze-and-excitation,
projection, residual add) at its input resolution and widths, with BatchNorm already folded into
the convolutions as :func:`mnaszoo.optimize_for_inference` and the exporter leave them. The graphs
are written directly from the resolved :class:`~mnaszoo.models.plan.BlockPlan` (milliseconds per
block, where an export through ``torch.onnx`` takes seconds), with the same operators the
exporter emits (``Conv`` with bias, ``Relu``, ``ReduceMean``, ``Sigmoid``, ``Mul``, ``Add``,
``Gemm``); ``tests/test_search_context.py`` checks them against eager PyTorch.

Weights do not change the latency of dense float kernels, so by default every weight is a
``ConstantOfShape`` node instead of stored numbers: a file is a few kilobytes instead of up to
megabytes, onnxruntime folds the constants into initializers when it loads the model and then
optimises exactly as it would the real weights (same fused, layout-converted graph). Opset 13 and
IR version 7 keep the files readable by old onnxruntime builds on small devices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ...errors import MnaszooError
from ...models.counting import conv_output_size
from ...models.plan import BlockPlan, NetworkPlan
from ...models.specs import BlockKind

__all__ = ["OPSET", "block_graph", "head_graph", "network_graph", "stem_graph"]

OPSET = 13
_IR_VERSION = 7

Weights = Mapping[str, Any]
"""Optional real weights: tensor name -> numpy array (tests compare against PyTorch with them)."""


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as error:
        raise MnaszooError("ONNX block graphs need onnx: pip install 'mnaszoo[onnx]'.") from error
    return onnx


class _Graph:
    """Accumulates nodes and weights; names are unique by construction (a counter)."""

    def __init__(self, weights: Weights | None) -> None:
        self.onnx = _onnx()
        self.helper = self.onnx.helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.weights = weights
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def node(self, op: str, inputs: list[str], **attributes: Any) -> str:
        out = self.name(op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], **attributes))
        return out

    def tensor(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        """A float weight: the real array if given, else a ConstantOfShape of ``1 / fan_in``."""
        import numpy as np

        if self.weights is not None:
            array = np.asarray(self.weights[name], dtype=np.float32).reshape(shape)
            self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
            return name
        shape_name = f"{name}__shape"
        self.initializers.append(
            self.onnx.numpy_helper.from_array(np.asarray(shape, dtype=np.int64), shape_name)
        )
        value = self.helper.make_tensor("value", self.onnx.TensorProto.FLOAT, [1], [1 / fan_in])
        self.nodes.append(
            self.helper.make_node("ConstantOfShape", [shape_name], [name], value=value)
        )
        return name

    def conv(
        self, x: str, prefix: str, cin: int, cout: int, kernel: int, stride: int, *, groups: int = 1
    ) -> str:
        per_group = cin // groups
        weight = self.tensor(f"{prefix}.weight", (cout, per_group, kernel, kernel), per_group)
        bias = self.tensor(f"{prefix}.bias", (cout,), max(1, per_group * kernel * kernel))
        pad = kernel // 2
        return self.node(
            "Conv",
            [x, weight, bias],
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
            group=groups,
        )

    def conv_act(self, x: str, prefix: str, *args: int, groups: int = 1, act: bool = True) -> str:
        out = self.conv(x, prefix, *args, groups=groups)
        return self.node("Relu", [out]) if act else out

    def squeeze_excite(self, x: str, prefix: str, channels: int, reduced: int) -> str:
        if reduced <= 0:
            return x
        scale = self.node("ReduceMean", [x], axes=[2, 3], keepdims=1)
        scale = self.conv_act(scale, f"{prefix}.reduce", channels, reduced, 1, 1)
        scale = self.conv(scale, f"{prefix}.expand", reduced, channels, 1, 1)
        return self.node("Mul", [x, self.node("Sigmoid", [scale])])

    def block(self, x: str, prefix: str, plan: BlockPlan) -> str:
        mid, k, s = plan.mid_channels, plan.kernel, plan.stride
        if plan.kind is BlockKind.CONV:
            out = self.conv_act(x, f"{prefix}.conv", plan.in_channels, plan.out_channels, k, s)
            out = self.squeeze_excite(out, f"{prefix}.se", plan.out_channels, plan.se_channels)
        else:
            out = x
            if plan.kind is BlockKind.MB:
                out = self.conv_act(out, f"{prefix}.expand", plan.in_channels, mid, 1, 1)
            out = self.conv_act(out, f"{prefix}.dw", mid, mid, k, s, groups=mid)
            out = self.squeeze_excite(out, f"{prefix}.se", mid, plan.se_channels)
            out = self.conv_act(out, f"{prefix}.project", mid, plan.out_channels, 1, 1, act=False)
        return self.node("Add", [out, x]) if plan.residual else out

    def head(self, x: str, cin: int, head: int, num_classes: int) -> str:
        out = self.conv_act(x, "head", cin, head, 1, 1)
        out = self.node("Flatten", [self.node("GlobalAveragePool", [out])], axis=1)
        if num_classes:
            weight = self.tensor("classifier.weight", (num_classes, head), head)
            bias = self.tensor("classifier.bias", (num_classes,), head)
            out = self.node("Gemm", [out, weight, bias], transB=1)
        return out

    def model(self, x: str, shape: tuple[int, ...], out: str, rank: int = 4) -> bytes:
        helper, tensor_type = self.helper, self.onnx.TensorProto.FLOAT
        graph = helper.make_graph(
            self.nodes,
            "mnaszoo_block",
            [helper.make_tensor_value_info(x, tensor_type, list(shape))],
            # Symbolic output dimensions: the runtime infers them (2-D after the classifier).
            [helper.make_tensor_value_info(out, tensor_type, [f"d{i}" for i in range(rank)])],
            initializer=self.initializers,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="mnaszoo",
            ir_version=_IR_VERSION,
        )
        self.onnx.checker.check_model(model)
        data: bytes = model.SerializeToString()
        return data


def _single(
    shape: tuple[int, ...], weights: Weights | None, build: Callable[[_Graph, str], str]
) -> bytes:
    graph = _Graph(weights)
    out = build(graph, "input")
    return graph.model("input", shape, out, 2 if out.startswith(("gemm", "flatten")) else 4)


def block_graph(
    plan: BlockPlan, shape: tuple[int, ...], *, weights: Weights | None = None
) -> bytes:
    """One block as a serialised ONNX model for an input of ``shape`` ``(N, C, H, W)``.

    Args:
        plan: the resolved block.
        shape: its input shape.
        weights: real weights named like the BatchNorm-folded block's state dict
            (``expand.weight``, ``expand.bias``, ...); default: ``ConstantOfShape`` weights.

    Raises:
        MnaszooError: onnx is not installed (``pip install 'mnaszoo[onnx]'``).
    """
    return _single(shape, weights, lambda g, x: g.block(x, "block", plan))


def stem_graph(
    in_channels: int, out_channels: int, shape: tuple[int, ...], *, weights: Weights | None = None
) -> bytes:
    """The 3x3 stride-2 stem convolution (folded BatchNorm, ReLU) as an ONNX model."""
    return _single(
        shape, weights, lambda g, x: g.conv_act(x, "stem", in_channels, out_channels, 3, 2)
    )


def head_graph(
    in_channels: int,
    head_channels: int,
    num_classes: int,
    shape: tuple[int, ...],
    *,
    weights: Weights | None = None,
) -> bytes:
    """The 1x1 head convolution, global pooling and classifier as an ONNX model."""
    return _single(shape, weights, lambda g, x: g.head(x, in_channels, head_channels, num_classes))


def network_graph(
    plan: NetworkPlan, image_size: int, num_classes: int, *, batch_size: int = 1
) -> bytes:
    """A whole network (stem, every block, head) with ``ConstantOfShape`` weights.

    The kit's calibration networks: measured end to end on the device, they fit the per-call
    overhead and fusion that per-block timings cannot see.
    """
    graph = _Graph(None)
    size = image_size
    out = graph.conv_act("input", "stem", 3, plan.stem_channels, 3, 2)
    size = conv_output_size(size, 3, 2)
    for index, block in enumerate(plan.blocks):
        out = graph.block(out, f"blocks.{index}", block)
        size = conv_output_size(size, block.kernel, block.stride)
    out = graph.head(out, plan.blocks[-1].out_channels, plan.head_channels, num_classes)
    return graph.model("input", (batch_size, 3, image_size, image_size), out, 2)
