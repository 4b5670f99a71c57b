"""Unit tests for the database setting: URL parsing and where the setting comes from."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import URL, make_url

from dangliang.settings import (
    DEFAULT_DB_URL,
    ENV_DB,
    Database,
    Settings,
    SettingsError,
    parse_db_url,
)


def sqlalchemy_url(db: Database) -> URL:
    """The read-model URL as SQLAlchemy sees it (a URL object or its string form)."""
    url = db.sqlalchemy_url()
    return url if isinstance(url, URL) else make_url(url)


def url_parts(db: Database) -> tuple[object, ...]:
    u = sqlalchemy_url(db)
    return (u.drivername, u.username, u.password, u.host, u.port, u.database)


# --------------------------------------------------------------------------------- SQLite


def test_sqlite_relative_path_is_resolved_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = parse_db_url("sqlite:///dangliang.db")
    assert db.backend == "sqlite"
    assert db.sqlite_path == tmp_path.resolve() / "dangliang.db"
    assert db.sqlite_path.is_absolute()
    sub = parse_db_url("sqlite:///data/county.db")
    assert sub.sqlite_path == tmp_path.resolve() / "data" / "county.db"


def test_sqlite_absolute_path(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "x.db"
    url = f"sqlite:///{target}"  # four slashes: sqlite:////tmp/...
    assert url.startswith("sqlite:////")
    db = parse_db_url(url)
    assert db.backend == "sqlite"
    assert db.sqlite_path == target.resolve()
    assert url_parts(db) == ("sqlite", None, None, None, None, str(target.resolve()))
    env = db.eventsourcing_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["SQLITE_DBNAME"] == str(target.resolve())
    assert db.describe() == f"SQLite {target.resolve()}"


def test_sqlite_path_with_percent_escapes_and_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_db_url("sqlite:///~/x.db").sqlite_path == tmp_path.resolve() / "x.db"
    db = parse_db_url(f"sqlite:///{tmp_path}/my%20county.db")
    assert db.sqlite_path == tmp_path.resolve() / "my county.db"


def test_sqlite_driver_suffix_is_accepted(tmp_path: Path) -> None:
    assert parse_db_url(f"sqlite+pysqlite:///{tmp_path}/x.db").backend == "sqlite"


@pytest.mark.parametrize(
    "url", ["sqlite:///:memory:", "sqlite://", "sqlite:///", "sqlite:///file::memory:?cache=shared"]
)
def test_sqlite_without_a_file_is_refused_clearly(url: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_db_url(url)
    message = str(info.value)
    assert "needs a file path" in message
    assert "sqlite:///dangliang.db" in message  # an example of what to write
    assert repr(url) in message
    assert "in-memory database cannot be shared" in message


# ----------------------------------------------------------------------------- PostgreSQL


def test_postgresql_with_everything() -> None:
    db = parse_db_url("postgresql://alice:s3cret@db.example.org:6543/county?schema=deqing")
    assert db == Database(
        backend="postgres",
        host="db.example.org",
        port=6543,
        user="alice",
        password="s3cret",
        dbname="county",
        schema="deqing",
    )
    env = db.eventsourcing_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_USER"]) == (
        "db.example.org",
        "6543",
        "alice",
    )
    assert (env["POSTGRES_PASSWORD"], env["POSTGRES_DBNAME"], env["POSTGRES_SCHEMA"]) == (
        "s3cret",
        "county",
        "deqing",
    )
    assert url_parts(db) == (
        "postgresql+psycopg",
        "alice",
        "s3cret",
        "db.example.org",
        6543,
        "county",
    )
    assert db.describe() == "PostgreSQL alice@db.example.org:6543/county schema deqing"
    assert "s3cret" not in db.describe()


def test_postgresql_defaults() -> None:
    db = parse_db_url("postgresql://db.example.org/county")
    assert (db.backend, db.host, db.port, db.user, db.password, db.dbname, db.schema) == (
        "postgres",
        "db.example.org",
        5432,
        "postgres",
        "",
        "county",
        "",
    )
    assert "POSTGRES_SCHEMA" not in db.eventsourcing_env()
    assert url_parts(db) == (
        "postgresql+psycopg",
        "postgres",
        None,
        "db.example.org",
        5432,
        "county",
    )
    assert db.describe() == "PostgreSQL postgres@db.example.org:5432/county"


def test_postgresql_without_host_and_other_spellings() -> None:
    assert parse_db_url("postgresql:///county").host == "127.0.0.1"
    assert parse_db_url("postgres://u@h/d").backend == "postgres"
    assert parse_db_url("postgresql+psycopg://u@h:5433/d").port == 5433


def test_postgresql_percent_encoded_credentials_are_decoded() -> None:
    db = parse_db_url("postgresql://us%40er:p%40ss%2Fw%3Ard@h:5432/d")
    assert (db.user, db.password) == ("us@er", "p@ss/w:rd")
    assert db.eventsourcing_env()["POSTGRES_PASSWORD"] == "p@ss/w:rd"


def test_sqlalchemy_url_keeps_special_characters_in_the_password() -> None:
    db = parse_db_url("postgresql://alice:p%40ss%2Fw%3Ard@db.example.org:6543/county")
    url = sqlalchemy_url(db)
    assert make_url(url.render_as_string(hide_password=False)) == url  # survives a round trip
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "alice",
        "p@ss/w:rd",
        "db.example.org",
        6543,
        "county",
    )


def test_postgresql_needs_a_database_name() -> None:
    for url in ("postgresql://u@h:5432", "postgresql://u@h:5432/"):
        with pytest.raises(SettingsError) as info:
            parse_db_url(url)
        assert "needs a database name" in str(info.value)


@pytest.mark.parametrize(
    "url", ["ftp://x", "mysql://u@h/d", "dangliang.db", "", "http://localhost/db"]
)
def test_unsupported_scheme_is_refused(url: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_db_url(url)
    message = str(info.value)
    assert message.startswith(f"unsupported database URL {url!r}")
    assert "sqlite:///FILE" in message and "postgresql://USER@HOST:PORT/DB" in message


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


# ------------------------------------------------------------------------------- Settings


def test_default_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_DB, raising=False)
    assert ENV_DB == "DANGLIANG_DB"
    assert Settings.from_env().db_url == DEFAULT_DB_URL == "sqlite:///dangliang.db"
    assert Settings.from_env(None).db_url == DEFAULT_DB_URL


def test_environment_beats_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DB, "postgresql://u@h/from_env")
    assert Settings.from_env().db_url == "postgresql://u@h/from_env"
    assert Settings.from_env().database.dbname == "from_env"


def test_explicit_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DB, "postgresql://u@h/from_env")
    s = Settings.from_env("postgresql://u@h/explicit")
    assert s.db_url == "postgresql://u@h/explicit"
    assert s.database.dbname == "explicit"


def test_empty_environment_or_explicit_value_falls_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_DB, "")
    assert Settings.from_env().db_url == DEFAULT_DB_URL
    monkeypatch.setenv(ENV_DB, "postgresql://u@h/from_env")
    assert Settings.from_env("").db_url == "postgresql://u@h/from_env"


def test_settings_open_nothing_and_parse_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DB, "ftp://x")
    s = Settings.from_env()  # no error yet: nothing is parsed or opened
    assert s.db_url == "ftp://x"
    with pytest.raises(SettingsError):
        _ = s.database
