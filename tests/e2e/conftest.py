"""The demo county, run once per backend through the console script and shared by the e2e
tests that read what it recorded (each test that writes uses its own periods or database)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PG_BASE_URL, drop_schema, require_postgres
from tests.e2e.test_equivalents_cli import run


@dataclass(frozen=True)
class Demo:
    db_url: str
    out_dir: Path
    first: subprocess.CompletedProcess[str]  # the first run's output


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """`dangliang demo --records 3000` on a database of its own."""
    folder = tmp_path_factory.mktemp("demo")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'demo.db'}"
    else:
        require_postgres()
        url = f"{PG_BASE_URL}?schema=demo_{uuid.uuid4().hex[:12]}"
    first = run("demo", "--records", "3000", "--out", str(folder / "out"), db=url)
    try:
        yield Demo(url, folder / "out", first)
    finally:
        if request.param == "postgres":
            drop_schema(url)
