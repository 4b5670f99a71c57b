"""What a database holds, read with plain SQL and nothing written: the state a killed command
left behind, before anything (a re-run, a catch-up) touches it.

`snapshot(url)` reads the log (service records, their corrections and voids, the imports'
own records, the payout runs folded from their events) and the read models (projection
positions, the runs as the read model shows them, the equivalents cube). Two checks are made
here, independent of the code under test:

- the cube against the log: the records up to the cube's position are folded in Python
  (recorded → a cell; corrected → moved; voided → out) and must add up to the cube's cells;
- the runs in the read model against the runs folded from the log up to the read model's
  position.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from sqlalchemy import Connection, create_engine

from dangliang.domain.imports import DataImport
from dangliang.domain.payout import PayoutPeriod
from dangliang.domain.service import ServiceRecord
from dangliang.projections import equivalents as eq
from dangliang.projections.facts_queries import runs_at
from dangliang.settings import Settings

RECORDED = get_topic(ServiceRecord.Recorded)
COMPACT = "S"  # the compact form of bulk-imported records: a JSON array (ledger.compact)
EPOCH = date(1970, 1, 1)  # its dates are days since then
CORRECTED = get_topic(ServiceRecord.Corrected)
VOIDED = get_topic(ServiceRecord.Voided)
IMPORTED = get_topic(DataImport.Completed)
PAYOUT = get_topic(PayoutPeriod) + "."
SCALE = 10_000  # the cube's quantities are × 10^4

Cell = tuple[str, str, str, str, bool]  # institution, staff, item, month, compliant


@dataclass
class LogRun:
    """A payout run as its period's events in the log say."""

    run_id: str
    period: str
    position: int
    results_digest: str
    results: dict[str, Any]
    recorded_at: int  # notification id of its RunComputed event
    state: str = "draft"
    approvals: list[tuple[str, str]] = field(default_factory=list)  # (reference, actor)


@dataclass
class Snapshot:
    head: int
    positions: dict[str, int]  # projection → position
    recorded: list[str]  # the ids (hex) of the service records' Recorded events
    changes: dict[str, int]  # record id (hex) → its corrections and voids
    imports: list[dict[str, Any]]  # each DataImport.Completed, as stored
    log_runs: dict[str, LogRun]  # every run, folded from the whole log
    model_runs: dict[str, tuple[str, str]]  # run id → (state, results digest), read model
    model_position: int  # the read model of runs (the inputs projection)
    cube_position: int
    cube_problems: list[str]  # where the cube differs from the log folded up to its position
    cube_digest: str
    runs_problems: list[str]  # where the read model's runs differ from the log's

    @property
    def change_events(self) -> int:
        return sum(self.changes.values())

    def runs_of(self, period: str) -> list[LogRun]:
        return [r for r in self.log_runs.values() if r.period == period]

    def current_run(self, period: str) -> LogRun | None:
        """The period's run that is not superseded (the one to approve or approved)."""
        found = [r for r in self.runs_of(period) if r.state != "superseded"]
        assert len(found) <= 1, found
        return found[0] if found else None


@contextmanager
def connect(url: str) -> Iterator[Connection]:
    database = Settings(url).database
    options: dict[str, Any] = {}
    if database.backend == "postgres" and database.schema:
        options["options"] = f"-csearch_path={database.schema}"
    engine = create_engine(database.sqlalchemy_url(), connect_args=options)
    try:
        with engine.connect() as conn:
            yield conn
            conn.rollback()
    finally:
        engine.dispose()


class Raw:
    """The driver's own cursor under a SQLAlchemy connection (tens of thousands of rows are
    read per snapshot; SQLAlchemy's row objects would triple the time), `?` placeholders on
    both backends."""

    def __init__(self, conn: Connection) -> None:
        self.dialect = conn.dialect.name
        self.driver = conn.connection.driver_connection
        self.table, self.nid = (
            ("stored_events", "rowid")
            if self.dialect == "sqlite"
            else ("dangliang_events", "notification_id")
        )

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.dialect != "sqlite":
            sql = sql.replace("?", "%s")
        cursor = self.driver.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql.format(events=self.table, nid=self.nid), params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def field(self, path: str) -> str:
        """SQL for a text field of the event's JSON state (`a.b` for nested)."""
        if self.dialect == "sqlite":
            return f"json_extract(state, '$.{path}')"
        parts = path.split(".")
        inner = "".join(f"->'{p}'" for p in parts[:-1])
        return f"(convert_from(state, 'UTF8')::jsonb{inner}->>'{parts[-1]}')"


def _hex(oid: Any) -> str:
    return oid.hex if isinstance(oid, UUID) else str(oid)  # SQLite: stored as hex already


def _state(raw: Any) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(bytes(raw))
    return found


def snapshot(url: str) -> Snapshot:
    with connect(url) as conn:
        raw = Raw(conn)
        head = int(raw.rows("SELECT max({nid}) FROM {events}")[0][0] or 0)
        positions = {
            str(name): int(pos)
            for name, pos in raw.rows("SELECT name, position FROM projection_tracking")
        }
        recorded = [
            _hex(oid)
            for (oid,) in raw.rows(
                "SELECT originator_id FROM {events} WHERE topic IN (?, ?)", RECORDED, COMPACT
            )
        ]
        changes = {
            _hex(oid): int(n)
            for oid, n in raw.rows(
                "SELECT originator_id, count(*) FROM {events} "
                "WHERE topic IN (?, ?) GROUP BY originator_id",
                CORRECTED,
                VOIDED,
            )
        }
        imports = [
            _state(s)
            for (s,) in raw.rows(
                "SELECT state FROM {events} WHERE topic = ? ORDER BY {nid}", IMPORTED
            )
        ]
        payout_events = [
            (int(n), str(topic), _state(s))
            for n, topic, s in raw.rows(
                "SELECT {nid}, topic, state FROM {events} WHERE topic LIKE ? ORDER BY {nid}",
                PAYOUT + "%",
            )
        ]
        model_position = positions.get("inputs", 0)
        model_runs = {run_id: (r.state, r.results_digest) for run_id, r in runs_at(conn).items()}
        suffix = eq.active_suffix(conn)
        cube_position = positions.get(f"equivalents_{suffix}", 0)
        cube_problems, cube_digest = _check_cube(conn, raw, suffix, cube_position)
    log_runs = fold_runs(payout_events)
    at_model = fold_runs([e for e in payout_events if e[0] <= model_position])
    expected = {run_id: (r.state, r.results_digest) for run_id, r in at_model.items()}
    runs_problems = [
        f"run {run_id}: read model {model_runs.get(run_id)} != log {expected.get(run_id)} "
        f"at the read model's position {model_position}"
        for run_id in sorted(set(expected) | set(model_runs))
        if model_runs.get(run_id) != expected.get(run_id)
    ]
    return Snapshot(
        head=head,
        positions=positions,
        recorded=recorded,
        changes=changes,
        imports=imports,
        log_runs=log_runs,
        model_runs=model_runs,
        model_position=model_position,
        cube_position=cube_position,
        cube_problems=cube_problems,
        cube_digest=cube_digest,
        runs_problems=runs_problems,
    )


def fold_runs(events: list[tuple[int, str, dict[str, Any]]]) -> dict[str, LogRun]:
    """Each run's state from its period's events, in log order."""
    runs: dict[str, LogRun] = {}
    for n, topic, body in events:
        kind = topic.removeprefix(PAYOUT)
        if kind == "RunComputed":
            superseded = body.get("supersedes")
            if superseded in runs:
                runs[superseded].state = "superseded"
            run_id = body["run_id"]
            runs[run_id] = LogRun(
                run_id=run_id,
                period=run_id.partition("#")[0],
                position=int(body["position"]),
                results_digest=body["results_digest"],
                results=json.loads(body["results_json"]),
                recorded_at=n,
            )
        elif kind in ("RunApproved", "RunRejected", "RunPaid"):
            run = runs[body["run_id"]]
            run.state = {"RunApproved": "approved", "RunRejected": "rejected"}.get(kind, "paid")
            if kind == "RunApproved":
                run.approvals.append((body["reference"], body["actor"]))
    return runs


def _check_cube(conn: Connection, raw: Raw, suffix: str, position: int) -> tuple[list[str], str]:
    """The cube's cells against the service records folded from the log up to `position`
    (the fields are read out of each event's JSON in SQL; the folding is done here)."""
    f = raw.field
    found = raw.rows(
        f"SELECT originator_id, topic, {f('institution_code')}, {f('staff_id')}, "
        f"{f('item_code')}, {f('service_date._data_')}, {f('compliant')}, "
        f"{f('quantity._data_')}, {{nid}} FROM {{events}} "
        "WHERE topic IN (?, ?, ?) AND {nid} <= ? ORDER BY {nid}",
        RECORDED,
        CORRECTED,
        VOIDED,
        position,
    )
    # The compact form (an array, trailing defaults left out) read here on its own terms.
    for oid, state, nid in raw.rows(
        "SELECT originator_id, state, {nid} FROM {events} WHERE topic = ? AND {nid} <= ?",
        COMPACT,
        position,
    ):
        values = json.loads(bytes(state))
        values += [None, 1, 1][len(values) - 6 :]
        _, institution, _, staff, item, day, _, quantity, compliant = values
        day = (EPOCH + timedelta(days=day)).isoformat()  # form 2: days since 1970-01-01
        found.append((oid, RECORDED, institution, staff, item, day, compliant, str(quantity), nid))
    found.sort(key=lambda row: row[-1])
    records: dict[Any, tuple[Cell, int]] = {}
    for oid, topic, institution, staff, item, day, compliant, quantity, _ in found:
        if topic == VOIDED:
            del records[oid]
            continue
        if topic != RECORDED:
            institution = records[oid][0][0]
        cell = (institution, staff, item, day[:7], compliant in (1, True, "true"))
        records[oid] = (cell, int(Decimal(quantity) * SCALE))
    expected: dict[Cell, list[int]] = defaultdict(lambda: [0, 0])
    for cell, quantity in records.values():
        expected[cell][0] += quantity
        expected[cell][1] += 1
    folded = sorted((*cell, q, n) for cell, (q, n) in expected.items() if q or n)
    tables = eq.tables(suffix)
    cube = [(*r[:4], bool(r[4]), int(r[5]), int(r[6])) for r in eq.cube_rows(conn, tables)]
    problems = []
    if cube != folded:
        missing = sorted(set(folded) - set(cube))[:3]
        extra = sorted(set(cube) - set(folded))[:3]
        problems.append(
            f"the cube at position {position} is not the log folded up to there: "
            f"{len(cube)} cells against {len(folded)}; e.g. missing {missing}, extra {extra}"
        )
    late = raw.rows(
        f"SELECT count(*) FROM {tables.deltas.name} WHERE notification_id > ?", position
    )
    if late[0][0]:
        problems.append(f"the cube holds {late[0][0]} change(s) beyond its position {position}")
    digest = hashlib.sha256(repr(cube).encode()).hexdigest()
    return problems, digest


class CommitWatcher:
    """When a running command's commits happen: the log's head and the read models' positions
    are polled from a thread of the test process every few milliseconds, and each change is
    noted (seconds since the watch began). With `kill_at_commit` and `pid` set, the process
    is sent SIGKILL as soon as that many commits have been seen."""

    def __init__(self, url: str, every: float = 0.002) -> None:
        self.url = url
        self.every = every
        self.commits: list[float] = []
        self.kill_at_commit: int | None = None
        self.pid: int | None = None
        self.killed_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._ready = threading.Event()

    def __enter__(self) -> CommitWatcher:
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _watch(self) -> None:
        database = Settings(self.url).database
        if database.backend == "sqlite":
            conn: Any = sqlite3.connect(str(database.sqlite_path), isolation_level=None, timeout=60)
            query = (
                "SELECT (SELECT max(rowid) FROM stored_events), "
                "(SELECT total(position) FROM projection_tracking)"
            )
        else:
            import psycopg

            conn = psycopg.connect(
                host=database.host,
                port=database.port,
                user=database.user,
                password=database.password or None,
                dbname=database.dbname,
                autocommit=True,
            )
            prefix = f'"{database.schema}".' if database.schema else ""
            query = (
                f"SELECT (SELECT max(notification_id) FROM {prefix}dangliang_events), "
                f"(SELECT sum(position) FROM {prefix}projection_tracking)"
            )
        try:
            last = tuple(conn.execute(query).fetchone())
            started = time.monotonic()
            self._ready.set()
            while not self._stop.is_set():
                now = tuple(conn.execute(query).fetchone())
                if now != last:
                    self.commits.append(time.monotonic() - started)
                    last = now
                wanted = self.kill_at_commit
                if wanted and self.pid and self.killed_at is None and len(self.commits) >= wanted:
                    os.kill(self.pid, signal.SIGKILL)
                    self.killed_at = time.monotonic() - started
                time.sleep(self.every)
        finally:
            self._ready.set()
            conn.close()


def results_without_position(results: dict[str, Any]) -> str:
    """A run's results without the log position it was computed at: what a run computed
    again later (after a kill that came after the first was recorded) must equal."""
    rest = {k: v for k, v in results.items() if k != "position"}
    text_ = json.dumps(rest, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text_.encode()).hexdigest()
