"""Imports running at the same time, and an import killed half way, on SQLite and PostgreSQL.

The imports run as real `dangliang import` processes; the log is inspected with SQL on the
library's own events table (`app.log.events_table`).
"""

from __future__ import annotations

import csv
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.utils import get_topic

from dangliang.application import Dangliang, bootstrap
from dangliang.demo.generator import GeneratedCounty, generate
from dangliang.domain.ids import service_record_id
from dangliang.domain.imports import BulkImport
from dangliang.domain.service import ServiceRecord
from dangliang.importers.formats import SERVICES
from dangliang.ledger.compact import SERVICE_RECORD_TOPIC
from dangliang.settings import Settings
from tests.conftest import DANGLIANG_CLI, load_reference

RECORDED = get_topic(ServiceRecord.Recorded)
DANGLIANG = DANGLIANG_CLI
SUMMARY = re.compile(r"(\d+) rows, (\d+) new, (\d+) already present, (\d+) rejected")
BIG = 20_000  # ten batches: a kill after the first leaves most of the file to the rerun
KILL_BATCH = 2_000


@pytest.fixture(scope="module")
def big_county(tmp_path_factory: pytest.TempPathFactory) -> GeneratedCounty:
    return generate(tmp_path_factory.mktemp("big"), records=BIG, seed=23, year=2024)


@pytest.fixture(scope="module")
def big_rows(big_county: GeneratedCounty) -> tuple[list[str], list[list[str]]]:
    with big_county.files["services"].open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, list(reader)


def write_services(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# ---- SQL on the events table ------------------------------------------------------------


@contextmanager
def connect(app: Dangliang) -> Iterator[Any]:
    """A plain DB-API connection to the log's database, in autocommit mode."""
    db = app.database
    conn: Any
    if db.backend == "sqlite":
        conn = sqlite3.connect(str(db.sqlite_path), timeout=60, isolation_level=None)
    else:
        import psycopg

        conn = psycopg.connect(
            host=db.host,
            port=db.port,
            user=db.user,
            password=db.password or None,
            dbname=db.dbname,
            autocommit=True,
        )
    try:
        yield conn
    finally:
        conn.close()


def table(app: Dangliang) -> str:
    name = app.log.events_table
    if app.database.backend == "postgres" and app.database.schema:
        return f'"{app.database.schema}"."{name}"'
    return name


def count_recorded(app: Dangliang, conn: Any) -> int:
    mark = "?" if app.database.backend == "sqlite" else "%s"
    cur = conn.execute(
        f"SELECT COUNT(*) FROM {table(app)} WHERE topic IN ({mark}, {mark})",
        (RECORDED, SERVICE_RECORD_TOPIC),
    )
    return int(cur.fetchone()[0])


def recorded_ids(app: Dangliang) -> list[UUID]:
    mark = "?" if app.database.backend == "sqlite" else "%s"
    with connect(app) as conn:
        rows = conn.execute(
            f"SELECT originator_id, originator_version FROM {table(app)} "
            f"WHERE topic IN ({mark}, {mark})",
            (RECORDED, SERVICE_RECORD_TOPIC),
        ).fetchall()
    assert {version for _, version in rows} <= {1}
    return [oid if isinstance(oid, UUID) else UUID(oid) for oid, _ in rows]


def lock_writes(app: Dangliang, conn: Any) -> None:
    """Begin a transaction that no writer to the events table can get past."""
    if app.database.backend == "sqlite":
        conn.execute("BEGIN IMMEDIATE")
    else:
        conn.execute("BEGIN")
        conn.execute(f"LOCK TABLE {table(app)} IN EXCLUSIVE MODE")


# ---- the command line -------------------------------------------------------------------


def start_import(db_url: str, path: Path, batch_size: int, tmp: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, TMPDIR=str(tmp))  # a killed run's scratch files stay in tmp_path
    return subprocess.Popen(
        [
            str(DANGLIANG),
            "import",
            str(path),
            "--db",
            db_url,
            "--batch-size",
            str(batch_size),
            "--actor",
            "importer",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, int, int, int]:
    """Wait for an import; check it succeeded; (rows, new, already present, rejected)."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    found = SUMMARY.search(out)
    assert found, out
    rows, new, present, rejected = map(int, found.groups())
    return rows, new, present, rejected


def expected_ids(rows: Sequence[Sequence[str]]) -> set[UUID]:
    source, inst = (
        SERVICES.column_names.index("source_id"),
        SERVICES.column_names.index("institution_code"),
    )
    return {service_record_id(r[inst], r[source]) for r in rows}


# ---- tests ------------------------------------------------------------------------------


def test_two_processes_catch_up_the_registry_at_once(
    app: Dangliang, db_url: str, county: GeneratedCounty
) -> None:
    """Two imports started together both bring the registry (reference data) up to date
    before validating; each must either do it or find it done, not fail. (Before the
    tracking row was locked, PostgreSQL failed here with a UniqueViolation.)"""
    load_reference(app, county)  # leaves the catalogue events for the registry to catch up
    others = [bootstrap(Settings(db_url)) for _ in range(2)]
    start = threading.Barrier(len(others))
    errors: list[BaseException] = []

    def catch_up(other: Dangliang) -> None:
        start.wait()
        try:
            other.registry()
        except BaseException as e:  # reported below, with the other thread's outcome
            errors.append(e)

    threads = [threading.Thread(target=catch_up, args=(o,)) for o in others]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        for o in others:
            o.close()
    assert errors == []
    registry = app.registry()
    assert len(registry.institutions) == county.institutions
    assert len(registry.staff_names) == county.staff
    assert len(registry.item_categories) == county.items


@pytest.mark.slow
def test_two_overlapping_imports_at_once_store_every_record_exactly_once(
    app: Dangliang,
    db_url: str,
    big_county: GeneratedCounty,
    big_rows: tuple[list[str], list[list[str]]],
    tmp_path: Path,
) -> None:
    header, rows = big_rows
    rows = rows[:8_000]
    load_reference(app, big_county)  # both imports start by catching the registry up
    a = write_services(tmp_path / "a.csv", header, rows[:6_000])
    b = write_services(tmp_path / "b.csv", header, rows[2_000:])

    procs = [start_import(db_url, path, 500, tmp_path) for path in (a, b)]
    results = [finish(p) for p in procs]

    assert [r[0] for r in results] == [6_000, 6_000]
    assert [r[3] for r in results] == [0, 0]
    assert sum(r[1] for r in results) == 8_000  # every record inserted by exactly one run
    assert sum(r[2] for r in results) == 4_000  # the overlap, found present by the other
    with connect(app) as conn:
        assert count_recorded(app, conn) == 8_000
    ids = recorded_ids(app)
    assert len(ids) == len(set(ids)) == 8_000
    assert set(ids) == expected_ids(rows)


def kill_after_first_batch(app: Dangliang, db_url: str, path: Path, tmp: Path) -> bool:
    """Start an import and SIGKILL it as soon as its first batch is in the log (after the
    import's `BulkImport.Started`); False when it finished before it could be killed."""
    before = app.log.head()
    proc = start_import(db_url, path, KILL_BATCH, tmp)
    deadline = time.monotonic() + 60
    while proc.poll() is None and app.log.head() <= before + 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)  # does nothing if it has already ended
    _, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGKILL), err
    return proc.returncode == -signal.SIGKILL


def settled_count(app: Dangliang) -> int:
    """Recorded events once no writer is left in the middle of a transaction."""
    with connect(app) as conn:
        lock_writes(app, conn)  # waits for a dead client's open transaction to be undone
        try:
            return count_recorded(app, conn)
        finally:
            conn.execute("ROLLBACK")


@pytest.mark.slow
def test_a_killed_import_leaves_whole_batches_and_a_rerun_completes_it(
    app: Dangliang,
    db_url: str,
    big_county: GeneratedCounty,
    big_rows: tuple[list[str], list[list[str]]],
    tmp_path: Path,
) -> None:
    header, rows = big_rows
    assert len(rows) == BIG
    load_reference(app, big_county)
    source = SERVICES.column_names.index("source_id")

    # Should the whole import slip in before the kill (a very slow poll), try again with the
    # same rows under new source ids, so the retry is a fresh import of 60,000 records.
    for attempt in range(3):
        baseline = settled_count(app)
        if attempt:
            rows = [[*r[:source], f"retry{attempt}-{r[source]}", *r[source + 1 :]] for r in rows]
        path = write_services(tmp_path / f"services-{attempt}.csv", header, rows)
        killed = kill_after_first_batch(app, db_url, path, tmp_path)
        committed = settled_count(app) - baseline
        if killed and committed < BIG:
            break
        assert committed == BIG  # finished before the kill: then it is complete
    else:
        pytest.fail("three imports in a row finished before they could be killed")

    assert committed > 0
    assert committed % KILL_BATCH == 0, f"{committed} is not whole batches of {KILL_BATCH}"
    # the killed import left its own trail: started, and one event per committed batch
    trail = [
        app.log.mapper.to_domain_event(n)
        for n in app.log.app_recorder.select_notifications(
            1, 1_000_000, topics=[get_topic(BulkImport.Started), get_topic(BulkImport.BatchWritten)]
        )
    ]
    last_import = [e for e in trail if e.originator_id == trail[-1].originator_id]
    assert isinstance(last_import[0], BulkImport.Started)
    assert [e.rows for e in last_import[1:]] == [KILL_BATCH] * (committed // KILL_BATCH)

    rerun = finish(start_import(db_url, path, KILL_BATCH, tmp_path))

    assert rerun == (BIG, BIG - committed, committed, 0)
    assert settled_count(app) == baseline + BIG
    ids = recorded_ids(app)
    assert len(ids) == len(set(ids)) == baseline + BIG
    assert expected_ids(rows) <= set(ids)
