"""Shared fixtures: each integration test runs on SQLite and on PostgreSQL.

PostgreSQL tests use a fresh schema per test in the `test` database (dropped afterwards).
Without a reachable server they are skipped with a message — except in CI (`CI=true`), where
a missing PostgreSQL fails the run instead of silently testing less.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dangliang.application import Dangliang, bootstrap
from dangliang.demo.generator import GeneratedCounty, generate
from dangliang.settings import Settings

# The console script of the environment running the tests (works without an activated venv).
DANGLIANG_CLI = str(Path(sys.executable).with_name("dangliang"))

PG_BASE_URL = os.environ.get("DANGLIANG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_pg_checked: tuple[bool, str] | None = None


def postgres_available() -> tuple[bool, str]:
    global _pg_checked
    if _pg_checked is None:
        import psycopg

        from dangliang.settings import parse_db_url

        db = parse_db_url(PG_BASE_URL)
        try:
            psycopg.connect(
                host=db.host,
                port=db.port,
                user=db.user,
                dbname=db.dbname,
                password=db.password or None,
                connect_timeout=3,
            ).close()
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
    import psycopg

    from dangliang.settings import parse_db_url

    db = parse_db_url(url)
    with psycopg.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        dbname=db.dbname,
        password=db.password or None,
        autocommit=True,
    ) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dangliang.db'}"
        return
    require_postgres()
    url = f"{PG_BASE_URL}?schema=t_{uuid.uuid4().hex[:12]}"
    try:
        yield url
    finally:
        drop_schema(url)


@pytest.fixture
def app(db_url: str) -> Iterator[Dangliang]:
    application = bootstrap(Settings(db_url))
    try:
        yield application
    finally:
        application.close()


@pytest.fixture(scope="session")
def county(tmp_path_factory: pytest.TempPathFactory) -> GeneratedCounty:
    """A small generated county (3,000 records, seed 11), shared read-only by the tests."""
    return generate(tmp_path_factory.mktemp("county"), records=3_000, seed=11, year=2024)


def load_reference(app: Dangliang, county: GeneratedCounty, actor: str = "tester") -> None:
    app.load_institutions(county.files["institutions"], actor=actor)
    app.load_headcount(county.files["headcount"], actor=actor)
    app.load_staff(county.files["staff"], actor=actor)
    app.load_catalogue(county.files["catalogue"], actor=actor)
