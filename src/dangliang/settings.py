"""One database setting: `--db URL` or `DANGLIANG_DB`, default `sqlite:///dangliang.db`.

The event store is eventsourcing's native recorder for the backend the URL names; the read
models use SQLAlchemy on the same database. Nothing here opens a connection.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy.engine import URL

DEFAULT_DB_URL = "sqlite:///dangliang.db"
ENV_DB = "DANGLIANG_DB"


class SettingsError(ValueError):
    """The database setting cannot be understood."""


@dataclass(frozen=True)
class Settings:
    db_url: str

    @classmethod
    def from_env(cls, db_url: str | None = None) -> Settings:
        return cls(db_url or os.environ.get(ENV_DB) or DEFAULT_DB_URL)

    @property
    def database(self) -> Database:
        return parse_db_url(self.db_url)


@dataclass(frozen=True)
class Database:
    backend: str  # "sqlite" | "postgres"
    sqlite_path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    dbname: str = ""
    schema: str = ""

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment eventsourcing's infrastructure factory reads."""
        if self.backend == "sqlite":
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": "60",
            }
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_LOCK_TIMEOUT": "60",
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "4",
        }
        if self.schema:
            env["POSTGRES_SCHEMA"] = self.schema
        return env

    def sqlalchemy_url(self) -> URL:
        if self.backend == "sqlite":
            return URL.create("sqlite", database=str(self.sqlite_path))
        return URL.create(
            "postgresql+psycopg",
            username=self.user,
            password=self.password or None,
            host=self.host,
            port=self.port,
            database=self.dbname,
        )

    def describe(self) -> str:
        if self.backend == "sqlite":
            return f"SQLite {self.sqlite_path}"
        schema = f" schema {self.schema}" if self.schema else ""
        return f"PostgreSQL {self.user}@{self.host}:{self.port}/{self.dbname}{schema}"


def parse_db_url(url: str) -> Database:
    """`sqlite:///relative.db`, `sqlite:////absolute.db`, `postgresql://user@host:port/db`.

    A PostgreSQL URL may carry `?schema=NAME` to keep one county's tables in its own schema.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        raw = unquote(url.split(":///", 1)[1]) if ":///" in url else ""
        if not raw or ":memory:" in raw:
            raise SettingsError(
                f"SQLite URL needs a file path, e.g. sqlite:///dangliang.db (got {url!r}); "
                "an in-memory database cannot be shared by the event store and the read models"
            )
        return Database(backend="sqlite", sqlite_path=Path(raw).expanduser().resolve())
    if scheme in ("postgresql", "postgres"):
        query = parse_qs(parts.query)
        dbname = parts.path.lstrip("/")
        if not dbname:
            raise SettingsError(f"PostgreSQL URL needs a database name: {url!r}")
        return Database(
            backend="postgres",
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            dbname=dbname,
            schema=query.get("schema", [""])[0],
        )
    raise SettingsError(
        f"unsupported database URL {url!r}: use sqlite:///FILE or postgresql://USER@HOST:PORT/DB"
    )
