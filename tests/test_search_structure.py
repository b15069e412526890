"""The limits that keep mnaszoo.search readable: a small public face, short parameter lists,
short modules; and the names it exported before its sub-packages still import, with a warning
that names their home."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import pytest

import mnaszoo.search as search

PACKAGE = Path(search.__file__).parent


def test_the_package_exports_at_most_15_names() -> None:
    assert len(search.__all__) <= 15, search.__all__
    for name in search.__all__:
        assert getattr(search, name).__doc__, name


def test_no_public_function_takes_more_than_8_parameters() -> None:
    exported = [getattr(search, name) for name in search.__all__]
    functions = [item for item in exported if inspect.isfunction(item)]
    assert functions
    for function in functions:
        count = len(inspect.signature(function).parameters)
        assert count <= 8, f"{function.__name__} takes {count} parameters"


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_module_is_longer_than_400_lines(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= 400, f"{path.relative_to(PACKAGE)} has {lines} lines"


def test_names_exported_before_still_import_with_a_warning() -> None:
    from mnaszoo.search.latency.context_table import ContextLatencyTable
    from mnaszoo.search.run.runner import run_search

    with pytest.warns(DeprecationWarning, match=r"search\.latency\.context_table"):
        assert search.ContextLatencyTable is ContextLatencyTable
    with pytest.warns(DeprecationWarning, match=r"search\.run\.runner\.run_search"):
        assert search.run_search is run_search
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert search.SearchConfig is not None  # an export warns about nothing
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = search.nothing  # type: ignore[attr-defined]


def test_both_predictors_share_one_calibration_type() -> None:
    from typing import get_type_hints

    from mnaszoo.search.latency import calibration, context_table, layer_table

    assert layer_table.Calibration is calibration.Calibration is calibration.ContextCalibration
    layer = get_type_hints(layer_table.LatencyTable.fit_calibration)["return"]
    context = get_type_hints(context_table.ContextLatencyTable.fit_calibration)["return"]
    assert layer is context is calibration.Calibration
