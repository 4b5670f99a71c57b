"""`bootstrap(settings)`: wires the event log, the read-model database and the projections
into one `Dangliang`, the service the entry points (CLI, HTTP API, demo) call. Nothing is
opened at import time."""

from __future__ import annotations

import contextlib
import gc
import getpass
import os
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event, text

from dangliang.application.audit import Audit
from dangliang.application.computations import Computations
from dangliang.application.import_jobs import Uploads
from dangliang.application.insurance_fund import InsuranceFund
from dangliang.application.pay_runs import PayRuns
from dangliang.application.policy_admin import PolicyAdmin
from dangliang.application.sessions import WebSessions
from dangliang.application.workbench_queries import WorkbenchQueries
from dangliang.ledger.eventlog import EventLog
from dangliang.projections import equivalents as eq
from dangliang.projections import facts as inp
from dangliang.projections import registry as reg
from dangliang.projections.insurance_cube import InsuranceProjection
from dangliang.projections.tracking import create_missing, forget_tracking, tracking_metadata
from dangliang.settings import Database, Settings, SettingsError


def default_actor() -> str:
    """Who is acting: `DANGLIANG_ACTOR`, else the operating-system user."""
    explicit = os.environ.get("DANGLIANG_ACTOR")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (e.g. some containers)
        return "unknown"


_collector_tuned = False


def tune_garbage_collector() -> None:
    """For a process that runs dangliang (the command line, an API worker, the tests): what
    was imported is frozen out of the collector's sight, and a collection runs after 50,000
    new objects instead of 700. A computation makes millions of small objects (Decimals, trace
    entries) that die young; with the default thresholds a third of its time went to
    collections that found nothing (BENCHMARKS.md). Called by entry points, never on import;
    once per process (a second call, e.g. a command run in-process by the tests, would freeze
    whatever garbage is alive by then)."""
    global _collector_tuned
    if _collector_tuned:
        return
    _collector_tuned = True
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


class Dangliang(
    Uploads, PolicyAdmin, Computations, InsuranceFund, PayRuns, Audit, WorkbenchQueries
):
    """Every command and query of dangliang, one use-case area per base class."""


def bootstrap(settings: Settings) -> Dangliang:
    database = settings.database
    engine = _engine(database)
    write_engine = _engine(database, immediate=True) if database.backend == "sqlite" else engine
    with _schema_lock(engine):
        if database.backend == "postgres" and database.schema:
            with engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"'))
        log = EventLog(database)  # the library creates its tables and functions here
        if log.mapper.cipher or log.mapper.compressor:
            raise SettingsError(
                "the projections read the log's JSON directly: disable event cipher/compression"
            )
        create_missing(
            write_engine, tracking_metadata, reg.metadata, inp.metadata, eq.versions_metadata
        )
        app = Dangliang(database, log, engine, write_engine)
        app.equivalents_projection().create(write_engine)
        with write_engine.begin() as conn:  # the hash chain was a catch-up projection once
            forget_tracking(conn, "chain")
        InsuranceProjection().create(write_engine)
        WebSessions.create(write_engine)
        app._upgrade_inputs()
    return app


@contextlib.contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    """On PostgreSQL, processes starting at the same moment create tables and functions one
    at a time (concurrent `CREATE … IF NOT EXISTS` / `CREATE OR REPLACE FUNCTION` fail with
    "tuple concurrently updated"). SQLite serialises DDL by itself."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtext('dangliang-bootstrap'))"))
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext('dangliang-bootstrap'))"))
            conn.commit()


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
