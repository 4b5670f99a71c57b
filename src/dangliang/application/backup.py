"""Backup and restore (备份与恢复) of the configured database.

`backup` takes a consistent copy while the workbench and imports keep running — SQLite's
online backup API on SQLite, `pg_dump` of the configured schema on PostgreSQL — and writes a
manifest beside it (`backup_manifest`): the log head and the hash chain's head in the copy,
the copy's SHA-256, when and with what it was made.

`restore` never leaves anything half restored where the live database is. It loads the backup
into a temporary place (SQLite: a file beside the target; PostgreSQL: a new schema), checks it
there — the file's digest against the manifest, the log head, and `Audit.verify_log`: the
hash chain over every event, every payout run's recorded chain head, and the chain's head at
the manifest's position — and only then switches it in (SQLite: an atomic rename; PostgreSQL:
two schema renames in one transaction). A target that already holds events is replaced only
with `replace`, and then kept under a `before-restore` name. If a check fails, the temporary
copy is removed and `RestoreRefused` names every problem; the live database is untouched.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL

from dangliang import __version__
from dangliang.application.backup_manifest import (
    BackupRefused,
    Manifest,
    locate,
    manifest_path,
)
from dangliang.application.bootstrap import bootstrap
from dangliang.application.sessions import web_sessions
from dangliang.ledger import postgres_dump as pg
from dangliang.ledger import sqlite_copy
from dangliang.ledger.chain import chain_head, format_head
from dangliang.ledger.postgres_dump import TargetHoldsEvents
from dangliang.ledger.postgres_load import load_dump
from dangliang.settings import Database, Settings

Progress = Callable[[str, int, int], Any]  # (phase, done, total)


class RestoreRefused(BackupRefused):
    """The restored copy did not pass its checks; the live database was not touched."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "恢复的数据未通过核验，已丢弃；现有数据库未改动：" + "；".join(problems),
            "the restored data failed verification and was discarded; the live database is "
            "untouched: " + "; ".join(problems),
        )


@dataclass(frozen=True)
class BackupMade:
    path: Path
    manifest_path: Path
    manifest: Manifest


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    target: str  # the database restored into, described
    kept: str | None  # where the database it replaced was kept
    lines: list[str]  # what the verification reported


# ---- backup ------------------------------------------------------------------------------


def backup(
    database: Database,
    path: Path | None = None,
    *,
    compress: int | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> BackupMade:
    """Back up the configured database to `path` (a file, or a folder to put it in; default:
    `dangliang-YYYYmmdd-HHMMSS.sqlite|.pgdump` here) with its manifest beside it."""
    now = now or datetime.now()
    target = backup_path(database, path, now)
    _require_source(database)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    sqlite_copy.remove(partial)
    app = bootstrap(Settings(database_url(database)))
    events_table = app.log.events_table
    try:
        if database.backend == "sqlite":
            assert database.sqlite_path is not None
            sqlite_copy.copy_online(database.sqlite_path, partial, _phase(progress, "backup"))
            engine = create_engine(URL.create("sqlite", database=str(partial)))
            try:
                with engine.connect() as conn:
                    head, events, chain = _heads(conn, events_table)
            finally:
                engine.dispose()
            tool = f"SQLite {sqlite3.sqlite_version}"
        else:
            with pg.snapshot(app.engine) as (conn, exported):
                head, events, chain = _heads(conn, events_table)
                tool = pg.dump_schema(
                    conn,
                    database,
                    exported,
                    partial,
                    compress=compress,
                    progress=_phase(progress, "backup"),
                )
    except BaseException:
        sqlite_copy.remove(partial)
        raise
    finally:
        app.close()
    digest = file_sha256(partial, _phase(progress, "digest"))
    manifest = Manifest(
        backend=database.backend,
        schema=pg.schema_name(database) if database.backend == "postgres" else None,
        file=target.name,
        size=partial.stat().st_size,
        sha256=digest,
        events_table=events_table,
        log_head=head,
        events=events,
        chain_head=chain,
        created_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        software_version=__version__,
        tool=tool,
    )
    partial.replace(target)
    manifest.write(manifest_path(target))
    return BackupMade(target, manifest_path(target), manifest)


def backup_path(database: Database, path: Path | None, now: datetime) -> Path:
    name = f"dangliang-{now:%Y%m%d-%H%M%S}" + (
        ".sqlite" if database.backend == "sqlite" else ".pgdump"
    )
    target = (path / name if path.is_dir() else path) if path is not None else Path(name)
    target = target.expanduser().resolve()
    for taken in (target, manifest_path(target)):
        if taken.exists():
            raise BackupRefused(
                f"{taken} 已存在：备份不会覆盖已有文件，请换一个名字",
                f"{taken} already exists: a backup never overwrites a file; choose another name",
            )
    return target


def _require_source(database: Database) -> None:
    """Back up what is there: never create an empty database just to back it up."""
    if database.backend == "sqlite":
        assert database.sqlite_path is not None
        if not database.sqlite_path.is_file():
            raise BackupRefused(
                f"没有数据库 {database.sqlite_path}：请用 --db 或 DANGLIANG_DB 指明要备份的数据库",
                f"there is no database at {database.sqlite_path}: name the one to back up "
                "with --db or DANGLIANG_DB",
            )
        return
    schema = pg.schema_name(database)
    if not pg.state_of(database, schema, "").exists:
        raise BackupRefused(
            f"{database.describe()} 中没有 schema {schema}",
            f"there is no schema {schema} in {database.describe()}",
        )


def _heads(conn: Connection, events_table: str) -> tuple[int, int, str]:
    """(last notification id, events, chain head) as this connection sees the log."""
    column = "rowid" if conn.dialect.name == "sqlite" else "notification_id"
    last, count = conn.execute(
        text(f"SELECT coalesce(max({column}), 0), count(*) FROM {events_table}")
    ).one()
    return int(last), int(count), format_head(chain_head(conn))


def file_sha256(path: Path, progress: Callable[[int, int], Any] | None = None) -> str:
    digest = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
            done += len(block)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


# ---- restore -----------------------------------------------------------------------------


def read_manifest(path: Path) -> tuple[Path, Path, Manifest]:
    """(backup file, manifest file, manifest) for a path naming the backup or its manifest."""
    data, manifest_file = locate(path)
    manifest = Manifest.read(manifest_file)
    if not data.is_file():
        raise BackupRefused(f"找不到备份文件 {data}", f"no backup file at {data}")
    return data, manifest_file, manifest


def restore(
    database: Database,
    path: Path,
    *,
    replace: bool = False,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> Restored:
    """Restore the backup at `path` into the configured database, verified before it is
    switched in (see the module's docstring)."""
    data, _, manifest = read_manifest(path)
    if manifest.backend != database.backend:
        raise BackupRefused(
            f"这是 {manifest.backend} 的备份，不能恢复到 {database.describe()}",
            f"this is a {manifest.backend} backup; it cannot be restored into "
            f"{database.describe()}",
        )
    stamp = (now or datetime.now()).strftime("%Y%m%d%H%M%S")
    if database.backend == "sqlite":
        return _restore_sqlite(database, data, manifest, replace, progress, stamp)
    return _restore_postgres(database, data, manifest, replace, progress, stamp)


def _restore_sqlite(
    database: Database,
    data: Path,
    manifest: Manifest,
    replace: bool,
    progress: Progress | None,
    stamp: str,
) -> Restored:
    target = database.sqlite_path
    assert target is not None
    _refuse_if_holding(target, manifest, replace)
    if target.exists():
        sqlite_copy.settle(target)  # in use: refused before any work is done
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f"{target.name}.restoring-{stamp}")
    sqlite_copy.remove(temporary)
    try:
        digest = sqlite_copy.copy_file(data, temporary, _phase(progress, "copy"))
        _require_digest(manifest, digest)
        lines = _verify(f"sqlite:///{quote(str(temporary))}", manifest, progress)
        sqlite_copy.settle(temporary)
        kept = None
        if target.exists():
            sqlite_copy.settle(target)
            _refuse_if_holding(target, manifest, replace)  # again: nothing came in between
            kept = _free_name(target.with_name(f"{target.name}.before-restore-{stamp}"))
        sqlite_copy.swap_in(temporary, target, kept)
    finally:
        sqlite_copy.remove(temporary)
    return Restored(manifest, database.describe(), None if kept is None else str(kept), lines)


def _refuse_if_holding(target: Path, manifest: Manifest, replace: bool) -> None:
    if replace or not target.exists():
        return
    try:
        held = sqlite_copy.events_in(target, manifest.events_table)
    except sqlite3.DatabaseError as e:
        raise BackupRefused(
            f"{target} 不是可读的 SQLite 数据库（{e}）：不会覆盖它",
            f"{target} is not a readable SQLite database ({e}): it is not overwritten",
        ) from None
    if held:
        raise pg.holds_events(str(target), held)


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _restore_postgres(
    database: Database,
    data: Path,
    manifest: Manifest,
    replace: bool,
    progress: Progress | None,
    stamp: str,
) -> Restored:
    target = pg.schema_name(database)
    where = database.describe() + ("" if database.schema else f" schema {target}")
    held = pg.state_of(database, target, manifest.events_table).events
    if held and not replace:
        raise pg.holds_events(where, held)
    _require_digest(manifest, file_sha256(data, _phase(progress, "digest")))
    temporary = f"dl_restoring_{stamp}_{secrets.token_hex(3)}"
    switched = False
    try:
        load_dump(
            database,
            data,
            dumped_schema=manifest.schema or "public",
            into_schema=temporary,
            events_table=manifest.events_table,
            events=manifest.events,
            dumped_with=pg.major_of(manifest.tool),
            progress=_phase(progress, "load"),
        )
        lines = _verify(database_url(database, temporary), manifest, progress)
        keep = pg.name_with_suffix(target, f"_before_restore_{stamp}")
        kept = pg.switch_schemas(
            database, temporary, target, keep, manifest.events_table, replace=replace
        )
        switched = True
    finally:
        if not switched:
            pg.drop_schema(database, temporary)
    # the library's functions name their schema: created again under the restored one's name
    bootstrap(Settings(database_url(database))).close()
    return Restored(manifest, where, None if kept is None else f"schema {kept}", lines)


def _require_digest(manifest: Manifest, digest: str) -> None:
    if digest != manifest.sha256:
        raise RestoreRefused(
            [
                f"备份文件的 SHA-256 {digest} 与清单记录的 {manifest.sha256} 不符：备份后被改动或"
                f"损坏 / the backup file's SHA-256 {digest} differs from the manifest's "
                f"{manifest.sha256}: it was altered or damaged after the backup"
            ]
        )


def _verify(url: str, manifest: Manifest, progress: Progress | None) -> list[str]:
    """Check the restored copy at `url`; return the verification's lines or raise
    RestoreRefused naming every problem."""
    app = bootstrap(Settings(url))
    try:
        # Sign-in sessions are not restored: whoever signed out since signs in again.
        with app.write_engine.begin() as conn:
            conn.execute(web_sessions.delete())
        app.catch_up(progress=progress)  # every run recorded in the log is checked
        problems = []
        with app.engine.connect() as conn:
            head, events, _ = _heads(conn, manifest.events_table)
        if (head, events) != (manifest.log_head, manifest.events):
            problems.append(
                f"恢复的日志到第 {head} 号（{events} 个事件），清单记录的是第 "
                f"{manifest.log_head} 号（{manifest.events} 个）/ the restored log ends at "
                f"{head} ({events} events); the manifest says {manifest.log_head} "
                f"({manifest.events} events)"
            )
        report = app.verify_log(
            expected_head=manifest.chain_head, progress=_phase(progress, "verify")
        )
        if not report["ok"]:
            problems.extend(report["lines"])
        if problems:
            raise RestoreRefused(problems)
        lines: list[str] = report["lines"]
        return lines
    finally:
        app.close()


# ---- helpers -----------------------------------------------------------------------------


def database_url(database: Database, schema: str | None = None) -> str:
    """The URL of `database` (PostgreSQL: in `schema` when given)."""
    if database.backend == "sqlite":
        return f"sqlite:///{quote(str(database.sqlite_path))}"
    chosen = schema if schema is not None else database.schema
    return URL.create(
        "postgresql",
        username=database.user,
        password=database.password or None,
        host=database.host,
        port=database.port,
        database=database.dbname,
        query={"schema": chosen} if chosen else {},
    ).render_as_string(hide_password=False)


def _phase(progress: Progress | None, phase: str) -> Callable[[int, int], Any] | None:
    if progress is None:
        return None
    return lambda done, total: progress(phase, done, total)


__all__ = [
    "BackupMade",
    "BackupRefused",
    "Manifest",
    "RestoreRefused",
    "Restored",
    "TargetHoldsEvents",
    "backup",
    "backup_path",
    "database_url",
    "read_manifest",
    "restore",
]
