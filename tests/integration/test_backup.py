"""Backup and restore (备份与恢复) on SQLite and PostgreSQL.

A small county with approved and paid runs is backed up once per backend; each test restores
it somewhere new. A restore is good only if the chain verifies, every run replays to the fen
and the figures are the ones backed up; a database that holds events is replaced only with
`replace` and kept; a backup altered after it was made (one event's bytes, the manifest's head)
is refused and leaves the live database as it was.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from dangliang.application import Dangliang, bootstrap
from dangliang.application.backup import (
    BackupMade,
    RestoreRefused,
    TargetHoldsEvents,
    backup,
    restore,
)
from dangliang.demo.generator import GeneratedCounty
from dangliang.domain.institution import Institution
from dangliang.domain.periods import Period
from dangliang.ledger import sqlite_copy
from dangliang.ledger.chain import chain_head, format_head
from dangliang.ledger.sqlite_copy import DatabaseInUse
from dangliang.settings import Settings, parse_db_url
from tests.conftest import PreparedDatabases
from tests.integration.test_compensation import YEAR, prepared, record_inputs
from tests.integration.test_payouts import run_and_approve

NOW = datetime(2025, 2, 3, 4, 5, 6)
STAMP = "20250203040506"


@dataclass
class County:
    backend: str
    app: Dangliang
    made: BackupMade
    runs: list[str]
    folder: Path


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest,
    prepared_databases: PreparedDatabases,
    county: GeneratedCounty,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[County]:
    """The county with three monthly runs (two approved, one of them paid), backed up."""
    backend = str(request.param)
    url = prepared_databases.copy(
        backend, "compensation-zhuji", lambda a: prepared(a, county), True
    )
    app = bootstrap(Settings(url))
    try:
        record_inputs(app)
        runs = [run_and_approve(app, Period(YEAR, m)) for m in (1, 2)]
        app.mark_payout_paid(runs[0], reference="银行回单 1", actor="cashier")
        runs.append(app.run_payout(Period(YEAR, 3), actor="maker", today=NOW.date()).run_id)
        folder = tmp_path_factory.mktemp(f"backup-{backend}")
        made = backup(app.database, folder / "county.bak")
        yield County(backend, app, made, runs, folder)
    finally:
        app.close()
        prepared_databases.drop(url)


@pytest.fixture
def fresh(world: County, prepared_databases: PreparedDatabases, tmp_path: Path) -> Iterator[str]:
    """Where to restore: a file that does not exist yet (SQLite), a schema of its own in a new
    database (PostgreSQL: a non-default schema, the default one holding other tables)."""
    if world.backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'live.db'}"
        return
    url = prepared_databases.copy("postgres", "empty", lambda _app: None, True)
    try:
        yield f"{url}?schema=county_b"
    finally:
        prepared_databases.drop(url)


def beside(url: str, name: str) -> str:
    """Another database next to `url`: a file in the same folder, a schema in the same
    PostgreSQL database."""
    db = parse_db_url(url)
    if db.sqlite_path is not None:
        return f"sqlite:///{db.sqlite_path.with_name(name + '.db')}"
    return url.replace(f"schema={db.schema}", f"schema={name}")


def opened(url: str) -> Dangliang:
    return bootstrap(Settings(url))


def head_of(url: str) -> tuple[int, str]:
    app = opened(url)
    try:
        with app.engine.connect() as conn:
            return app.log.head(), format_head(chain_head(conn))
    finally:
        app.close()


def add_an_institution(url: str) -> None:
    """One more event, so the live database differs from the backup."""
    app = opened(url)
    try:
        app.log.save(
            Institution.register(
                code="Z99",
                name="新建卫生院",
                kind="township_health_centre",
                parent_code=None,
                remote=False,
                actor="t",
            )
        )
    finally:
        app.close()


def leftovers(world: County, url: str) -> list[str]:
    """Temporary copies a restore left behind (there must be none)."""
    db = parse_db_url(url)
    if world.backend == "sqlite":
        assert db.sqlite_path is not None
        return [p.name for p in db.sqlite_path.parent.glob("*restoring*")]
    app = opened(url)
    try:
        with app.engine.connect() as conn:
            names = conn.execute(
                text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'dl_restoring%'")
            )
            return [str(n) for (n,) in names]
    finally:
        app.close()


def test_a_restored_county_verifies_replays_every_run_and_has_the_same_figures(
    world: County, fresh: str
) -> None:
    source = world.app
    manifest = world.made.manifest
    with source.engine.connect() as conn:
        assert manifest.chain_head == format_head(chain_head(conn))
    assert manifest.log_head == manifest.events == source.log.head()
    assert json.loads(world.made.manifest_path.read_text("utf-8"))["backend"] == world.backend

    restored = restore(parse_db_url(fresh), world.made.path, now=NOW)

    assert restored.kept is None
    assert any("chain intact" in line for line in restored.lines)
    app = opened(fresh)
    try:
        assert app.log.head() == manifest.log_head
        report = app.verify_log()
        assert report["ok"] and report["runs_checked"] == len(world.runs)
        for run_id in world.runs:
            assert app.replay_payout(run_id)["identical"], run_id
        assert {k: (r.state, r.results) for k, r in app.payout_runs().items()} == {
            k: (r.state, r.results) for k, r in source.payout_runs().items()
        }
        assert app.compute(Period(YEAR, 4)).as_json() == source.compute(Period(YEAR, 4)).as_json()
        assert app.equivalents(str(YEAR), by="item") == source.equivalents(str(YEAR), by="item")
        # and it takes new events: the restored log continues where the backup ended
        add_an_institution(fresh)
        assert head_of(fresh)[0] > manifest.log_head
    finally:
        app.close()
    assert leftovers(world, fresh) == []


def test_a_database_holding_events_is_replaced_only_with_replace_and_is_kept(
    world: County, fresh: str
) -> None:
    database = parse_db_url(fresh)
    restore(database, world.made.path, now=NOW)
    add_an_institution(fresh)
    before = head_of(fresh)

    with pytest.raises(TargetHoldsEvents, match="--replace"):
        restore(database, world.made.path, now=NOW)
    assert head_of(fresh) == before

    if world.backend == "sqlite":  # a process still has it open: refused, nothing changed
        assert database.sqlite_path is not None
        holder = sqlite3.connect(database.sqlite_path)
        try:
            holder.execute("SELECT count(*) FROM stored_events").fetchone()
            with pytest.raises(DatabaseInUse, match="stop the workbench"):
                restore(database, world.made.path, replace=True, now=NOW)
        finally:
            holder.close()
        assert head_of(fresh) == before

    restored = restore(database, world.made.path, replace=True, now=NOW)

    assert head_of(fresh)[0] == world.made.manifest.log_head
    assert restored.kept is not None and STAMP in restored.kept
    if world.backend == "sqlite":
        assert database.sqlite_path is not None
        kept_url = f"sqlite:///{database.sqlite_path}.before-restore-{STAMP}"
    else:
        assert restored.kept == f"schema county_b_before_restore_{STAMP}"
        kept_url = fresh.replace("schema=county_b", f"schema=county_b_before_restore_{STAMP}")
    assert head_of(kept_url) == before  # the database it replaced, as it was
    assert leftovers(world, fresh) == []


def test_a_backup_taken_while_events_are_written_holds_the_log_as_it_stood(
    world: County, fresh: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy is one moment of the log: an event written while the backup runs is not in it
    (SQLite: one read transaction over every step of the copy; PostgreSQL: pg_dump in the
    snapshot the heads were read in), and the manifest describes exactly what the copy holds."""
    source_url = beside(fresh, "county_src")
    restore(parse_db_url(source_url), world.made.path, now=NOW)  # a live county of its own
    head = head_of(source_url)
    monkeypatch.setattr(sqlite_copy, "PAGES_PER_STEP", 8)  # many steps, a write between two
    steps: list[str] = []

    def write_during_backup(phase: str, done: int, total: int) -> None:
        if phase == "backup" and done < total and not steps:
            steps.append(phase)
            add_an_institution(source_url)

    made = backup(
        parse_db_url(source_url),
        world.folder / f"during-{uuid.uuid4().hex[:6]}",
        progress=write_during_backup,
    )
    assert steps, "the backup reported no progress before it finished"
    assert head_of(source_url)[0] > head[0]  # the write went through, during the backup
    assert (made.manifest.log_head, made.manifest.chain_head) == (head[0], head[1])
    restore(parse_db_url(fresh), made.path, now=NOW)
    assert head_of(fresh) == head


def test_a_tampered_backup_is_refused_and_the_live_database_is_unchanged(
    world: County, fresh: str
) -> None:
    database = parse_db_url(fresh)
    restore(database, world.made.path, now=NOW)
    add_an_institution(fresh)
    live = head_of(fresh)
    # PostgreSQL: uncompressed, so one event's bytes can be changed in the file itself
    made = backup(
        world.app.database,
        world.folder / f"plain-{uuid.uuid4().hex[:6]}",
        compress=0 if world.backend == "postgres" else None,
    )
    good = json.loads(made.manifest_path.read_text("utf-8"))

    def refused(manifest: dict[str, Any], pattern: str) -> None:
        made.manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
        with pytest.raises(RestoreRefused, match=pattern):
            restore(database, made.path, replace=True, now=NOW)
        assert head_of(fresh) == live
        assert leftovers(world, fresh) == []

    # the manifest's chain head changed: the log does not hash to it
    nid, digest = good["chain_head"].split(":")
    other = ("0" if digest[0] != "0" else "1") + digest[1:]
    refused({**good, "chain_head": f"{nid}:{other}"}, "does not match the log")

    # one event's stored bytes changed in the backup file
    changed_id = tamper_with_an_event(world, made.path)
    refused(good, "SHA-256")  # caught by the file's digest first
    digest_now = sha256_of(made.path)
    refused({**good, "sha256": digest_now}, f"event {changed_id} .*changed after it was chained")


def tamper_with_an_event(world: County, path: Path) -> int:
    """Change one digit of a service record's source id in its stored state, in the backup file
    itself (SQLite: the BLOB's bytes; PostgreSQL: the bytea's hex in the dump's COPY data)."""
    events = world.app.log.events_table
    column = "notification_id" if world.backend == "postgres" else "rowid"
    with world.app.engine.connect() as conn:
        nid, state = conn.execute(
            text(
                f"SELECT {column}, state FROM {events} WHERE topic IN ('S') "
                f"ORDER BY {column} LIMIT 1 OFFSET 100"
            )
        ).one()
    state = bytes(state)
    # the compact form: [batch,"institution","source id",…]
    at = state.index(b",", state.index(b",") + 1) + 2
    while not state[at : at + 1].isdigit():
        at += 1
    bumped = state[:at] + bytes([ord("0") + (state[at] - ord("0") + 1) % 10]) + state[at + 1 :]
    data = path.read_bytes()
    old, new = (state, bumped) if world.backend == "sqlite" else (state.hex(), bumped.hex())
    needle, changed = (old, new) if isinstance(old, bytes) else (old.encode(), new.encode())
    assert data.count(needle) == 1, "the event's bytes are not in the file as one piece"
    path.write_bytes(data.replace(needle, changed))
    return int(nid)


def sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
