"""The demo county, run once per backend and shared by the e2e tests that read what it
recorded (each test that writes uses its own periods or database); the tests that start
from a loaded county take copies of prepared databases (tests/conftest.py: `records_url`,
`reference_url`).

The demo costs ~20 s whatever the number of records (the county's 139 institutions, 591
payslips, 27 runs and their statements), so it runs once per backend and session, each time
under one of the two insurance rules: De Qing on SQLite, Zhijiang on PostgreSQL. The tests of
what it printed and recorded read the run of their rule (`on_sqlite`, `on_postgres`); every
command the demo uses has an end-to-end test of its own on both backends (test_payout_cli,
test_insurance_cli, test_compensation_cli, test_cli).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
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
    insurance: str  # the insurance fund's rule: "deqing" or "zhijiang"


INSURANCE_ON = {"sqlite": "deqing", "postgres": "zhijiang"}  # the demo's rule on each backend
# For the tests that read one demo run (a session fixture: the run is shared, not repeated).
on_sqlite = pytest.mark.parametrize("demo", ["sqlite"], indirect=True)
on_postgres = pytest.mark.parametrize(
    "demo", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture(scope="session")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Demo]]:
    """`demos(backend)`: `dangliang demo --records 3000` on a database of its own, under the
    backend's insurance rule (`INSURANCE_ON`); run once per backend and session, whatever
    order the tests come in (a parametrized session fixture would be run again each time the
    backend switches)."""
    made: dict[str, Demo] = {}

    def make(backend: str) -> Demo:
        if backend not in made:
            folder = tmp_path_factory.mktemp("demo")
            if backend == "sqlite":
                url = f"sqlite:///{folder / 'demo.db'}"
            else:
                require_postgres()
                url = f"{PG_BASE_URL}?schema=demo_{uuid.uuid4().hex[:12]}"
            insurance = INSURANCE_ON[backend]
            out = folder / "out"
            first = run(
                "demo", "--records", "3000", "--insurance", insurance, "--out", str(out), db=url
            )
            made[backend] = Demo(url, out, first, insurance)
        return made[backend]

    yield make
    for demo in made.values():
        if not demo.db_url.startswith("sqlite"):
            drop_schema(demo.db_url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo(request: pytest.FixtureRequest, demos: Callable[[str], Demo]) -> Demo:
    """The demo county of the backend (`demos`)."""
    return demos(request.param)
