"""The golden corpus's tests share one loaded log per backend: under pytest-xdist they run on
one worker per backend (as the shared counties of tests/conftest.py do), so each log is
loaded once instead of once on every worker that happens to get one of these tests."""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "golden" not in getattr(item, "fixturenames", ()):
            continue
        callspec = getattr(item, "callspec", None)
        backend = "postgres" if callspec and "postgres" in callspec.id else "sqlite"
        item.add_marker(pytest.mark.xdist_group(f"golden-{backend}"))
