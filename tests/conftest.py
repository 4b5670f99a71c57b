"""Shared fixtures: each integration test runs on SQLite and on PostgreSQL.

A test's database is a copy of one prepared once per run (`PreparedDatabases`, in
tests/databases.py; shared by pytest-xdist's workers): a file copy on SQLite,
`CREATE DATABASE … TEMPLATE` on PostgreSQL (dropped afterwards). Without a reachable server
the PostgreSQL tests are skipped with a message — except in CI (`CI=true`), where a missing
PostgreSQL fails the run instead of silently testing less.

Property tests (Hypothesis) run under one of two settings profiles: `ci`, the default, with
the example counts written in each test and a derandomized seed (a run here repeats the run
in CI, and a failure prints its `@reproduce_failure` blob); and `thorough`
(`pytest --hypothesis-profile=thorough`), ten times the examples, random seeds, Hypothesis's
example database, and the schema fuzzing of every role on both backends with its coverage
phase. `examples(n)` is a test's count under the active profile.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import freezegun
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from dangliang.application import Dangliang, bootstrap, tune_garbage_collector
from dangliang.demo.generator import GeneratedCounty, generate
from dangliang.settings import Settings
from tests.databases import (  # noqa: F401 (the tests import these from here)
    IN_CI,
    PG_BASE_URL,
    Preparation,
    PreparedDatabases,
    _admin_connect,
    _with_dbname,
    drop_schema,
    end_run,
    postgres_available,
    require_postgres,
    start_run,
)

# Threads that wait on the clock while a test freezes it keep the real clock (what the tests
# freeze is the app's): the prepared databases' background thread (tests/databases.py) connects
# to PostgreSQL, and psycopg times its connection wait with `time.monotonic`, which freezegun
# made jump by decades under it ("connection timeout expired" at once); the browser tests'
# live server (tests/browser) runs an asyncio loop, whose timers set while the clock was frozen
# never fired, so it never saw that it should stop (10 s at the end of a worker's session).
freezegun.configure(extend_ignore_list=["psycopg.waiting", "asyncio"])


def pytest_configure(config: pytest.Config) -> None:
    tune_garbage_collector()  # as the command line and the API workers do
    if not hasattr(config, "workerinput"):  # the run's controller (tests/databases.py)
        start_run()


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        end_run()


# Hypothesis's profiles (see the module's docstring). Its pytest plugin loads the one named by
# `--hypothesis-profile` after this module is imported and before the tests are collected.
THOROUGH_FACTOR = 10
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile(
    "thorough",
    max_examples=100 * THOROUGH_FACTOR,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.load_profile("ci")


def thorough() -> bool:
    """Whether the `thorough` profile is loaded (read at collection, when tests are defined)."""
    return hypothesis_settings.default.max_examples >= 100 * THOROUGH_FACTOR


def examples(n: int) -> int:
    """A property test's example count: `n` in CI, ten times `n` in the thorough profile."""
    return n * THOROUGH_FACTOR if thorough() else n


# The console script of the environment running the tests (works without an activated venv).
DANGLIANG_CLI = str(Path(sys.executable).with_name("dangliang"))


@pytest.fixture(scope="session")
def prepared_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PreparedDatabases]:
    databases = PreparedDatabases(tmp_path_factory.mktemp("prepared"))
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Each test that uses a database runs on SQLite and on PostgreSQL."""
    return str(request.param)


# For a test whose subject does not depend on the database (parsing a file, formatting a page
# or a document) while another test covers the same path on PostgreSQL: it runs on SQLite.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


# (name, prepare, *, caught_up=True, base=None) or (preparation, *, caught_up=True)
Prepare = Callable[..., str]  # -> URL
PrepareApp = Callable[..., Dangliang]  # -> application


@pytest.fixture
def prepared_url(backend: str, prepared_databases: PreparedDatabases) -> Iterator[Prepare]:
    """`prepared_url(name, prepare, base=None)` or `prepared_url(preparation)`: the URL of this
    test's own copy of a prepared database (built by `prepare`, on a copy of the `base`
    preparation's database if given, the first time the run asks for `name`)."""
    urls: list[str] = []

    def copy(
        name: str | Preparation,
        prepare: Callable[[Dangliang], object] | None = None,
        *,
        caught_up: bool = True,
        base: Preparation | None = None,
    ) -> str:
        if isinstance(name, Preparation):
            name, prepare, base = name.name, name.prepare, name.base
        assert prepare is not None
        urls.append(prepared_databases.copy(backend, name, prepare, caught_up, base))
        return urls[-1]

    yield copy
    for url in urls:
        prepared_databases.drop(url)


@pytest.fixture
def prepared_app(prepared_url: Prepare) -> Iterator[PrepareApp]:
    """`prepared_app(name, prepare, base=None)` or `prepared_app(preparation)`: the application
    on this test's copy of a prepared database."""
    opened: list[Dangliang] = []

    def open_copy(
        name: str | Preparation,
        prepare: Callable[[Dangliang], object] | None = None,
        *,
        caught_up: bool = True,
        base: Preparation | None = None,
    ) -> Dangliang:
        url = prepared_url(name, prepare, caught_up=caught_up, base=base)
        opened.append(bootstrap(Settings(url)))
        return opened[-1]

    yield open_copy
    for application in opened:
        application.close()


@pytest.fixture
def db_url(prepared_url: Prepare) -> str:
    """A fresh database with the tables created and nothing in the log, on each backend."""
    return prepared_url("empty", lambda _app: None)


@pytest.fixture
def app(db_url: str) -> Iterator[Dangliang]:
    application = bootstrap(Settings(db_url))
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def reference_url(prepared_url: Prepare, county: GeneratedCounty) -> str:
    """A copy, on each backend, of a database holding the county's reference data."""
    return prepared_url(reference(county))


@pytest.fixture
def reference_app(prepared_app: PrepareApp, county: GeneratedCounty) -> Dangliang:
    """The application on a copy of a database holding the county's reference data
    (institutions, headcount, staff, catalogue, loaded by "tester")."""
    return prepared_app(reference(county))


@pytest.fixture(scope="session")
def county(tmp_path_factory: pytest.TempPathFactory) -> GeneratedCounty:
    """A small generated county (3,000 records, seed 11), shared read-only by the tests."""
    return generate(tmp_path_factory.mktemp("county"), records=3_000, seed=11, year=2024)


# The centres of `four_centres`: C01, C02 (force majeure in tests/integration/test_compensation's
# inputs), C07 and C12 (remote; C12 fails its assessment there), with their village clinics.
FOUR_CENTRES = ("C01", "C02", "C07", "C12")
FOUR_CENTRES_FILES = ("institutions", "headcount", "staff", "catalogue", "services")


@pytest.fixture(scope="session")
def four_centres(
    county: GeneratedCounty, tmp_path_factory: pytest.TempPathFactory
) -> GeneratedCounty:
    """`county` cut down to four of its twelve centres and their village clinics (46 of its 139
    institutions), with their staff and service records and the whole catalogue: for tests of
    how runs behave, where the other institutions would only be computed again and again. It
    has the reference data and the service records only (`FOUR_CENTRES_FILES`)."""
    folder = tmp_path_factory.mktemp("four-centres")
    files: dict[str, Path] = {}
    kept: dict[str, int] = {}
    for kind in FOUR_CENTRES_FILES:
        source = county.files[kind]
        with source.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            fields = list(reader.fieldnames or [])
            column = "code" if kind == "institutions" else "institution_code"
            rows = [r for r in reader if column not in r or r[column][:3] in FOUR_CENTRES]
        files[kind] = folder / source.name
        with files[kind].open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fields)
            writer.writeheader()
            writer.writerows(rows)
        kept[kind] = len(rows)
    institutions = kept["institutions"]
    return GeneratedCounty(
        out_dir=folder,
        institutions=institutions,
        village_clinics=institutions - len(FOUR_CENTRES),
        staff=kept["staff"],
        items=kept["catalogue"],
        records=kept["services"],
        files=files,
    )


def county_tag(county: GeneratedCounty) -> str:
    """What tells the prepared databases of a cut-down county (`four_centres`) from the whole
    county's (`county`) in the preparations' names: "" for the whole county."""
    return "" if county.institutions == 139 else f"-{county.institutions}-institutions"


def load_reference(app: Dangliang, county: GeneratedCounty, actor: str = "tester") -> None:
    app.load_institutions(county.files["institutions"], actor=actor)
    app.load_headcount(county.files["headcount"], actor=actor)
    app.load_staff(county.files["staff"], actor=actor)
    app.load_catalogue(county.files["catalogue"], actor=actor)


def reference(county: GeneratedCounty) -> Preparation:
    """The county's reference data, loaded by "tester"."""
    return Preparation(f"reference{county_tag(county)}", lambda a: load_reference(a, county))


def records(county: GeneratedCounty) -> Preparation:
    """`reference`, and the county's year of service records imported by "t" (2025-01-01)."""

    def import_services(app: Dangliang) -> None:
        app.import_services(county.files["services"], actor="t", today=date(2025, 1, 1))

    return Preparation(f"records{county_tag(county)}", import_services, reference(county))


@pytest.fixture
def records_url(prepared_url: Prepare, county: GeneratedCounty) -> str:
    """A copy, on each backend, of a database holding the county's reference data and its
    service records (`records`)."""
    return prepared_url(records(county))


# Fixtures that build a whole county once and share it (per module, or per session): under
# pytest-xdist the tests that use one run on the same worker, per backend, so that the county
# is built once instead of once on every worker that happens to get one of those tests.
# (pytest-xdist marks a group by a suffix on the test's node id, which pytest 9 no longer
# reads — its node ids are built from another field — so pyproject keeps pytest below 9.)
SHARED_COUNTIES = {
    "world": "module",
    "fuzz_world": "module",
    "fuzz_world_each": "module",
    "fuzz_world_postgres": "module",
    "demo": "session",
    "make_site": "session",  # the workbench's county (tests/web)
    "live": "session",  # the live server and the browser (tests/browser)
}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        shared = [f for f in SHARED_COUNTIES if f in getattr(item, "fixturenames", ())]
        if not shared:
            continue
        callspec = getattr(item, "callspec", None)
        backend = "postgres" if callspec and "postgres" in callspec.id else "sqlite"
        scope = item.module.__name__ if SHARED_COUNTIES[shared[0]] == "module" else shared[0]
        item.add_marker(pytest.mark.xdist_group(f"{scope}-{backend}"))
