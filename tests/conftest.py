"""Shared test settings."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from mnaszoo.deploy._torchscript_fix import drop_dangling_builtin_ids

# Keep intra-op threads fixed so timings and numerics do not depend on the machine: two threads,
# or one per pytest-xdist worker when several workers share the cores (most of the suite's time
# is single-threaded Python: exporting, lowering, subprocesses, servers).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(1 if _WORKERS > 1 else 2)


def assert_close_to_scale(actual: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    """Max absolute difference <= ``tol`` times the largest magnitude of ``expected``.

    Logit magnitudes vary with weights; relative-to-scale error is what changes predictions.
    """
    assert actual.shape == expected.shape
    scale = expected.abs().max().item()
    error = (actual.float() - expected.float()).abs().max().item()
    assert error <= tol * scale, f"max |diff| {error:.3g} > {tol:g} x scale {scale:.3g}"


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread for the test: tiny models (search samples at 32 px, the controller's
    LSTM steps) pay more for OpenMP handoffs between two busy cores than for the arithmetic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _no_dangling_torchscript_builtins() -> None:
    """Tests that call ``torch.jit.script`` themselves would flake after any test that ran
    ``torch.compile`` (see mnaszoo/torchscript_fix.py); mnaszoo.export guards itself."""
    drop_dangling_builtin_ids()


# The loopback Hub/URL server with every manifest entry, for any test that asks for `served`.
from .support.served import served  # noqa: E402, F401

# Ray reads its auth mode once per process, at import, and each cluster it starts reads it
# again: a test that set it for a while (monkeypatch) left drivers and later clusters disagreeing
# (a new GCS asking for a token the driver never sent). The tests' clusters are loopback-only, so
# every process of the session runs without tokens from the start.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

# Two Ray clusters started at once on one machine (one test file per xdist worker) can take the
# same ports and fail to start; the modules with Ray tests take turns instead.
_RAY_MODULES: set[str] = set()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("ray") is not None:
            _RAY_MODULES.add(item.module.__name__)  # type: ignore[attr-defined]


@pytest.fixture(autouse=True, scope="module")
def _one_ray_module_at_a_time(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.module.__name__ not in _RAY_MODULES:
        yield
        return
    lock = Path(tempfile.gettempdir()) / "mnaszoo-tests-ray.lock"
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
