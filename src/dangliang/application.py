"""The service layer: one object whose methods are the commands and queries of dangliang.

The CLI and the HTTP API are thin shells around it. `bootstrap(settings)` wires the event log,
the read-model database and the projections; nothing is opened at import time.
"""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select, text

from dangliang.bulk import bulk_writer
from dangliang.domain.imports import DataImport
from dangliang.eventlog import EventLog
from dangliang.importers import corrections, reference
from dangliang.importers.services import ImportResult, ServiceImporter
from dangliang.projections import registry as reg
from dangliang.projections.base import Projection, catch_up, position, tracking_metadata
from dangliang.settings import Database, Settings

Progress = Callable[[str, int, int], Any]


def default_actor() -> str:
    """Who is acting: `DANGLIANG_ACTOR`, else the operating-system user."""
    explicit = os.environ.get("DANGLIANG_ACTOR")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (e.g. some containers)
        return "unknown"


@dataclass
class Status:
    database: str
    head: int
    projections: dict[str, int]
    counts: dict[str, int]


class Dangliang:
    def __init__(self, database: Database, log: EventLog, engine: Engine, write_engine: Engine):
        self.database = database
        self.log = log
        self.engine = engine  # reads
        self.write_engine = write_engine  # projection writes (serialised on SQLite)
        self.registry_projection = reg.RegistryProjection()
        self.projections: list[Projection] = [self.registry_projection]

    # ---- projections --------------------------------------------------------------------

    def catch_up(self, progress: Progress | None = None) -> None:
        """Read-your-writes: bring every read model up to the log's head."""
        for p in self.projections:
            report = functools.partial(progress, p.name) if progress else None
            catch_up(self.write_engine, self.log, p, progress=report)

    def registry(self) -> reg.Registry:
        catch_up(self.write_engine, self.log, self.registry_projection)
        with self.engine.connect() as conn:
            return reg.Registry.load(conn)

    # ---- commands -----------------------------------------------------------------------

    def load_institutions(self, path: Path, *, actor: str) -> reference.LoadResult:
        return reference.load_institutions(self.log, self.registry(), Path(path), actor)

    def load_headcount(self, path: Path, *, actor: str) -> reference.LoadResult:
        return reference.load_headcount(self.log, self.registry(), Path(path), actor)

    def load_staff(self, path: Path, *, actor: str) -> reference.LoadResult:
        return reference.load_staff(self.log, self.registry(), Path(path), actor)

    def load_catalogue(self, path: Path, *, actor: str) -> reference.LoadResult:
        return reference.load_catalogue(self.log, self.registry(), Path(path), actor)

    def import_services(
        self,
        path: Path,
        *,
        actor: str,
        today: date,
        skip_bad_rows: bool = False,
        progress: Progress | None = None,
        batch_size: int = 100_000,
    ) -> ImportResult:
        writer = bulk_writer(self.database, self.log.events_table)
        try:
            importer = ServiceImporter(
                self.log, self.registry(), writer, actor=actor, today=today, batch_size=batch_size
            )
            result = importer.run(Path(path), skip_bad_rows=skip_bad_rows, progress=progress)
        finally:
            writer.close()
        self.log.save(
            DataImport(
                kind="services",
                file_name=Path(path).name,
                import_ref=result.import_ref,
                rows=result.rows,
                inserted=result.inserted,
                already_present=result.already_present,
                rejected=result.rejected,
                actor=actor,
            )
        )
        return result

    def import_corrections(
        self, path: Path, *, actor: str, today: date
    ) -> corrections.CorrectionsResult:
        return corrections.import_corrections(
            self.log, self.registry(), Path(path), actor=actor, today=today
        )

    # ---- queries ------------------------------------------------------------------------

    def status(self) -> Status:
        self.catch_up()
        with self.engine.connect() as conn:
            positions = {p.name: position(conn, p.name) for p in self.projections}
            counts = {
                "institutions": conn.scalar(select(func.count()).select_from(reg.institutions))
                or 0,
                "staff": conn.scalar(select(func.count()).select_from(reg.staff)) or 0,
                "catalogue_items": conn.scalar(select(func.count()).select_from(reg.items)) or 0,
            }
        return Status(self.database.describe(), self.log.head(), positions, counts)

    def close(self) -> None:
        self.log.close()
        self.engine.dispose()
        self.write_engine.dispose()


def bootstrap(settings: Settings) -> Dangliang:
    database = settings.database
    engine = _engine(database)
    write_engine = _engine(database, immediate=True) if database.backend == "sqlite" else engine
    if database.backend == "postgres" and database.schema:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"'))
    log = EventLog(database)
    for metadata in (tracking_metadata, reg.metadata):
        metadata.create_all(write_engine)
    return Dangliang(database, log, engine, write_engine)


def _engine(database: Database, *, immediate: bool = False) -> Engine:
    """SQLAlchemy engine for the read models. With `immediate` (SQLite only), every
    transaction starts with BEGIN IMMEDIATE: it takes the write lock up front, so two
    processes catching up at once queue instead of failing on a stale snapshot."""
    if database.backend == "sqlite":
        assert database.sqlite_path is not None
        database.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(database.sqlalchemy_url(), connect_args={"timeout": 120})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            if immediate:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves

        if immediate:

            @event.listens_for(engine, "begin")
            def _begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    connect_args: dict[str, Any] = {}
    if database.schema:
        connect_args["options"] = f"-csearch_path={database.schema}"
    return create_engine(database.sqlalchemy_url(), connect_args=connect_args, pool_pre_ping=True)
