"""Shared fixtures: each integration test runs on SQLite and on PostgreSQL.

A test's database is a copy of one prepared once per session (`PreparedDatabases`): a file
copy on SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL (dropped afterwards).
Without a reachable server they are skipped with a message — except in CI (`CI=true`), where
a missing PostgreSQL fails the run instead of silently testing less.

Property tests (Hypothesis) run under one of two settings profiles: `ci`, the default, with
the example counts written in each test and a derandomized seed (a run here repeats the run
in CI, and a failure prints its `@reproduce_failure` blob); and `thorough`
(`pytest --hypothesis-profile=thorough`), ten times the examples, random seeds, Hypothesis's
example database, and the schema fuzzing of every role on both backends with its coverage
phase. `examples(n)` is a test's count under the active profile.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from dangliang.application import Dangliang, bootstrap, tune_garbage_collector
from dangliang.demo.generator import GeneratedCounty, generate
from dangliang.settings import Settings


def pytest_configure(config: pytest.Config) -> None:
    tune_garbage_collector()  # as the command line and the API workers do


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

PG_BASE_URL = os.environ.get("DANGLIANG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_pg_checked: tuple[bool, str] | None = None


def postgres_available() -> tuple[bool, str]:
    global _pg_checked
    if _pg_checked is None:
        try:
            _admin_connect(PG_BASE_URL, connect_timeout=3).close()
            _pg_checked = (True, "")
        except Exception as e:  # any failure to connect means: no PostgreSQL here
            _pg_checked = (False, f"{type(e).__name__}: {e}".strip())
    return _pg_checked


def require_postgres() -> None:
    ok, why = postgres_available()
    if ok:
        return
    message = (
        f"PostgreSQL not reachable at {PG_BASE_URL} ({why}); "
        "set DANGLIANG_TEST_PG_URL to point the PostgreSQL tests at a server"
    )
    if IN_CI:
        pytest.fail(f"CI=true requires PostgreSQL: {message}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {message}")


def drop_schema(url: str) -> None:
    from dangliang.settings import parse_db_url

    with _admin_connect(url) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{parse_db_url(url).schema}" CASCADE')


def _admin_connect(url: str, **options: Any) -> Any:
    """An autocommit connection to the database of `url` (DDL: schemas and databases)."""
    import psycopg

    from dangliang.settings import parse_db_url

    db = parse_db_url(url)
    return psycopg.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        dbname=db.dbname,
        password=db.password or None,
        autocommit=True,
        **options,
    )


def _with_dbname(url: str, dbname: str) -> str:
    """The PostgreSQL URL of another database on the same server (no schema)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{dbname}", "", ""))


class PreparedDatabases:
    """Databases prepared once per test session (per xdist worker) and copied for each test.

    A preparation is a name and a function that writes to a fresh, bootstrapped database
    (`"empty"` writes nothing). The first test that asks for it builds the template; every test
    then gets its own copy: on SQLite a file copy of the checkpointed template, on PostgreSQL
    `CREATE DATABASE … TEMPLATE`. Where the server refuses to create databases, each test
    gets a fresh schema and the preparation is run again (slower, same result).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        # dltest_<when>_<who>_…: a run killed before its teardown leaves databases that a
        # later run drops once they are a day old (a running session's never are).
        self.tag = f"{int(time.time())}_{uuid.uuid4().hex[:6]}"
        self.templates: dict[tuple[str, str, bool], str] = {}
        self.copies: list[str] = []
        self.can_create_databases: bool | None = None

    def copy(
        self, backend: str, name: str, prepare: Callable[[Dangliang], object], caught_up: bool
    ) -> str:
        """A URL to a new database holding what `prepare` wrote (with every read model caught
        up, unless `caught_up` is false)."""
        key = (backend, name, caught_up)
        if caught_up:
            prepare = _caught_up(prepare)
        if backend == "sqlite":
            return self._sqlite_copy(key, prepare)
        require_postgres()
        if not self._postgres_can_create_databases():
            return self._fresh_schema(prepare)
        if key not in self.templates:
            template = f"dltest_{self.tag}_tpl{len(self.templates)}"
            with _admin_connect(PG_BASE_URL) as conn:
                conn.execute(f'CREATE DATABASE "{template}"')
            _build(_with_dbname(PG_BASE_URL, template), prepare)
            self.templates[key] = template
        copy = f"dltest_{self.tag}_{uuid.uuid4().hex[:8]}"
        with _admin_connect(PG_BASE_URL) as conn:
            conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{self.templates[key]}"')
        self.copies.append(copy)
        return _with_dbname(PG_BASE_URL, copy)

    def drop(self, url: str) -> None:
        """Drop a copy (PostgreSQL) once its test is done; SQLite copies go with tmp_path."""
        if url.startswith("sqlite"):
            return
        if "schema=" in url:
            drop_schema(url)
            return
        dbname = urlsplit(url).path.lstrip("/")
        with _admin_connect(PG_BASE_URL) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        self.copies.remove(dbname)

    def close(self) -> None:
        if not self.templates and not self.copies:
            return
        with _admin_connect(PG_BASE_URL) as conn:
            for dbname in [*self.copies, *self.templates.values()]:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    def _sqlite_copy(
        self, key: tuple[str, str, bool], prepare: Callable[[Dangliang], object]
    ) -> str:
        if key not in self.templates:
            path = self.root / f"template-{len(self.templates)}.db"
            _build(f"sqlite:///{path}", prepare)
            with sqlite3.connect(path) as conn:  # everything into the main file, WAL emptied
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.templates[key] = str(path)
        copy = self.root / f"copy-{uuid.uuid4().hex[:12]}.db"
        shutil.copyfile(self.templates[key], copy)
        return f"sqlite:///{copy}"

    def _postgres_can_create_databases(self) -> bool:
        if self.can_create_databases is None:
            import psycopg

            probe = f"dltest_{self.tag}_probe"
            try:
                with _admin_connect(PG_BASE_URL) as conn:
                    conn.execute(f'CREATE DATABASE "{probe}"')
                    conn.execute(f'DROP DATABASE "{probe}"')
                self.can_create_databases = True
                self._drop_abandoned()
            except psycopg.errors.InsufficientPrivilege:
                self.can_create_databases = False
        return self.can_create_databases

    def _drop_abandoned(self) -> None:
        """Drop the test databases of runs killed more than a day ago."""
        day_ago = time.time() - 86_400
        with _admin_connect(PG_BASE_URL) as conn:
            names = conn.execute(r"SELECT datname FROM pg_database WHERE datname LIKE 'dltest\_%'")
            for (name,) in names.fetchall():
                when = name.split("_")[1]
                if when.isdigit() and int(when) < day_ago:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _fresh_schema(self, prepare: Callable[[Dangliang], object]) -> str:
        url = f"{PG_BASE_URL}?schema=t_{uuid.uuid4().hex[:12]}"
        _build(url, prepare)
        return url


def _caught_up(prepare: Callable[[Dangliang], object]) -> Callable[[Dangliang], object]:
    def prepare_and_catch_up(application: Dangliang) -> None:
        prepare(application)
        application.catch_up()

    return prepare_and_catch_up


def _build(url: str, prepare: Callable[[Dangliang], object]) -> None:
    application = bootstrap(Settings(url))
    try:
        prepare(application)
    finally:
        application.close()


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


Prepare = Callable[..., str]  # (name, prepare, *, caught_up=True) -> URL
PrepareApp = Callable[..., Dangliang]  # (name, prepare, *, caught_up=True) -> application


@pytest.fixture
def prepared_url(backend: str, prepared_databases: PreparedDatabases) -> Iterator[Prepare]:
    """`prepared_url(name, prepare)`: the URL of this test's own copy of a prepared database
    (built by `prepare` on a fresh one the first time the session asks for `name`)."""
    urls: list[str] = []

    def copy(name: str, prepare: Callable[[Dangliang], object], *, caught_up: bool = True) -> str:
        urls.append(prepared_databases.copy(backend, name, prepare, caught_up))
        return urls[-1]

    yield copy
    for url in urls:
        prepared_databases.drop(url)


@pytest.fixture
def prepared_app(
    prepared_url: Prepare,
) -> Iterator[Callable[[str, Callable[[Dangliang], object]], Dangliang]]:
    """`prepared_app(name, prepare)`: the application on this test's copy of a prepared database."""
    opened: list[Dangliang] = []

    def open_copy(
        name: str, prepare: Callable[[Dangliang], object], *, caught_up: bool = True
    ) -> Dangliang:
        opened.append(bootstrap(Settings(prepared_url(name, prepare, caught_up=caught_up))))
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
def reference_app(prepared_app: PrepareApp, county: GeneratedCounty) -> Dangliang:
    """The application on a copy of a database holding the county's reference data
    (institutions, headcount, staff, catalogue, loaded by "tester")."""
    return prepared_app("reference", lambda a: load_reference(a, county))


@pytest.fixture(scope="session")
def county(tmp_path_factory: pytest.TempPathFactory) -> GeneratedCounty:
    """A small generated county (3,000 records, seed 11), shared read-only by the tests."""
    return generate(tmp_path_factory.mktemp("county"), records=3_000, seed=11, year=2024)


def load_reference(app: Dangliang, county: GeneratedCounty, actor: str = "tester") -> None:
    app.load_institutions(county.files["institutions"], actor=actor)
    app.load_headcount(county.files["headcount"], actor=actor)
    app.load_staff(county.files["staff"], actor=actor)
    app.load_catalogue(county.files["catalogue"], actor=actor)


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
