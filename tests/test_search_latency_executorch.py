"""The executorch latency backend: one list of backends, the programs it times, its cache."""

from __future__ import annotations

import pytest
import torch

from mnaszoo.deploy.runtimes import LATENCY_BACKENDS, RUNTIMES
from mnaszoo.errors import InvalidArgumentError
from mnaszoo.models.architectures import MNASNET_SMALL
from mnaszoo.models.plan import BlockPlan
from mnaszoo.models.specs import BlockKind
from mnaszoo.search.config import BACKEND_NAMES, LatencyConfig, SearchConfig
from mnaszoo.search.latency.context_table import ContextLatencyTable, ContextLayer
from mnaszoo.search.latency.layer_table import LatencyTable
from mnaszoo.search.latency.timing import BACKENDS, runtime_version


def test_backends_come_from_the_one_list_of_runtimes() -> None:
    assert "executorch" in RUNTIMES
    assert BACKENDS == LATENCY_BACKENDS == BACKEND_NAMES
    assert set(BACKENDS) == {"torch", "torch-optimized", "onnxruntime", "executorch"}
    assert all(name in RUNTIMES for name in BACKENDS)


def test_cli_offers_every_backend() -> None:
    import argparse

    from mnaszoo.cli import search as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["out", "--latency-backend", "executorch"])
    assert args.latency_backend == "executorch"


def test_digits_search_on_executorch_defaults_to_the_context_predictor() -> None:
    config = SearchConfig(latency=LatencyConfig(backend="executorch")).resolved()
    assert config.latency.predictor == "context"
    plain = SearchConfig(latency=LatencyConfig(backend="torch")).resolved()
    assert plain.latency.predictor == "layers"


def test_per_layer_table_refuses_executorch_by_name() -> None:
    with pytest.raises(InvalidArgumentError, match="context"):
        LatencyTable(backend="executorch")  # type: ignore[arg-type]


def test_runtime_version_names_executorch() -> None:
    from importlib.metadata import version

    assert runtime_version("executorch") == f"executorch {version('executorch')}"
    table = ContextLatencyTable(backend="executorch", image_size=32)
    assert table.fingerprint["runtime"].startswith("executorch ")


@pytest.mark.slow
def test_layer_program_computes_the_layer(tmp_path, monkeypatch) -> None:
    """The block's .pte gives the eager block's output: it is that block, BatchNorm folded."""
    pytest.importorskip("executorch")
    from executorch.runtime import Runtime

    from mnaszoo.search.latency import executorch_blocks
    from mnaszoo.search.latency.context_layers import layer_module

    monkeypatch.setenv("MNASZOO_CACHE", str(tmp_path))
    table = ContextLatencyTable(backend="executorch", image_size=32, num_classes=10)
    layer = table.layers(MNASNET_SMALL)[2]  # an inverted-residual block
    data = executorch_blocks.layer_pte(layer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        reference = layer_module(layer).eval()
    x = torch.randn(layer.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(x)
    method = Runtime.get().load_program(data).load_method("forward")
    got = method.execute([x])[0]
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)

    # A second request is served from the disk cache: no lowering.
    def fail(*args: object) -> bytes:
        raise AssertionError("lowered again")

    monkeypatch.setattr("mnaszoo.deploy.executorch._lower", fail)
    assert executorch_blocks.layer_pte(layer) == data
    assert list((tmp_path / "executorch-layers").glob("*.pte"))
    call = executorch_blocks.pte_call(data, layer.shape, threads=1)
    assert tuple(call()[0].shape) == tuple(expected.shape)  # type: ignore[index]


def test_programs_are_cached_by_input_shape(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A layer whose key does not name its resolution must not reuse a cached program at
    another input shape (the runtime refuses inputs of another shape)."""
    pytest.importorskip("executorch")
    from mnaszoo.search.latency import executorch_blocks

    monkeypatch.setenv("MNASZOO_CACHE", str(tmp_path))
    monkeypatch.setattr(
        "mnaszoo.deploy.executorch._lower",
        lambda module, example: repr(tuple(example.shape)).encode(),
    )
    block = BlockPlan(0, 0, BlockKind.MB, 24, 144, 24, 3, 1, 0, True, 4)
    small = ContextLayer("same key", "block", (1, 24, 8, 8), block=block)
    large = ContextLayer("same key", "block", (1, 24, 16, 16), block=block)
    assert small.key == large.key
    assert executorch_blocks.layer_pte(small) == b"(1, 24, 8, 8)"
    assert executorch_blocks.layer_pte(large) == b"(1, 24, 16, 16)"
