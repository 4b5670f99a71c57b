"""PostgreSQL backups with the server's own tools, for `dangliang backup` and `restore`.

A backup is `pg_dump --format=custom --schema=SCHEMA --no-owner` of the configured schema,
taken inside a snapshot this module exports (`snapshot`), so the log head and chain head
written into the backup's manifest are read from exactly the data the dump holds. pg_dump
must be at least as new as the server (it refuses an older one itself; this says so first,
in both languages).

A restore loads the dump into a new, temporary schema (`postgres_load`), which is checked
there; only then `switch_schemas` renames the live schema away (kept) and the restored one
into its place, in one transaction.

PostgreSQL's driver (psycopg) is imported by the functions that connect, so a command on a
SQLite database, which imports this module with `backup`, does not load it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from dangliang.domain.errors import DomainError
from dangliang.settings import Database

if TYPE_CHECKING:
    import psycopg

Progress = Callable[[int, int], Any]  # (done, total)

_VERSION = re.compile(r"\(PostgreSQL\)\s*(\d+)(?:\.(\d+))?")
MAX_NAME = 63  # PostgreSQL identifiers are at most 63 bytes


class ToolProblem(DomainError):
    """A PostgreSQL client tool is missing, too old, or failed."""


class TargetHoldsEvents(DomainError):
    """The target database (file or schema) holds events and may not be replaced."""


@dataclass(frozen=True)
class Tool:
    path: str
    version: str  # as the tool prints it, e.g. "pg_dump (PostgreSQL) 15.20"
    major: int


@dataclass(frozen=True)
class SchemaState:
    exists: bool
    relations: int  # tables, sequences, views … in it
    events: int  # rows of the events table (0 when there is none)


def client_tool(name: str) -> Tool:
    """`pg_dump` or `pg_restore` from PATH, with its version."""
    path = shutil.which(name)
    if path is None:
        raise ToolProblem(
            f"找不到 PostgreSQL 客户端工具 {name}：请安装与服务器同版本或更新的 PostgreSQL "
            "客户端（如 Debian 的 postgresql-client），并确保它在 PATH 中",
            f"the PostgreSQL client tool {name} is not on PATH: install the PostgreSQL "
            "client tools of the server's version or newer (e.g. Debian's postgresql-client)",
        )
    done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    found = _VERSION.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise ToolProblem(
            f"无法读取 {path} 的版本：{done.stdout.strip() or done.stderr.strip()}",
            f"cannot tell the version of {path}: {done.stdout.strip() or done.stderr.strip()}",
        )
    return Tool(path, done.stdout.strip(), int(found.group(1)))


def major_of(version: str) -> int:
    """The major version in a tool's version line (0 when there is none)."""
    found = _VERSION.search(version)
    return int(found.group(1)) if found else 0


def require_at_least(tool: Tool, major: int, what_zh: str, what_en: str) -> None:
    if tool.major < major:
        raise ToolProblem(
            f"{tool.path}（{tool.version}）比{what_zh}（{major}）旧：请安装 PostgreSQL {major} "
            "或更新版本的客户端工具，并把它放在 PATH 的前面",
            f"{tool.path} ({tool.version}) is older than {what_en} ({major}): install the "
            f"PostgreSQL {major} (or newer) client tools and put them first on PATH",
        )


def server_major(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SHOW server_version_num").scalar_one()) // 10_000


def tool_env(database: Database) -> dict[str, str]:
    """The environment a client tool connects with (no password on the command line)."""
    env = {
        **os.environ,
        "PGHOST": database.host,
        "PGPORT": str(database.port),
        "PGUSER": database.user,
        "PGDATABASE": database.dbname,
        "LC_MESSAGES": "C",  # its progress lines are read below
    }
    if database.password:
        env["PGPASSWORD"] = database.password
    return env


def schema_name(database: Database) -> str:
    return database.schema or "public"


@contextmanager
def snapshot(engine: Engine) -> Iterator[tuple[Connection, str]]:
    """A read-only transaction whose snapshot is exported: what is read on the connection and
    what `pg_dump --snapshot` dumps are the same data."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            exported = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
            yield conn, exported


def dump_schema(
    conn: Connection,
    database: Database,
    exported: str,
    target: Path,
    *,
    compress: int | None = None,
    progress: Progress | None = None,
) -> str:
    """`pg_dump` the configured schema as it stands in the exported snapshot into `target`;
    return the tool's version line. `conn` is the snapshot's connection (still open)."""
    tool = client_tool("pg_dump")
    require_at_least(tool, server_major(conn), "数据库服务器", "the server")
    schema = schema_name(database)
    tables = int(
        conn.exec_driver_sql(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %(s)s", {"s": schema}
        ).scalar_one()
    )
    command = [
        tool.path,
        "--format=custom",
        f"--schema={exact_pattern(schema)}",
        "--no-owner",
        f"--snapshot={exported}",
        f"--file={target}",
        "--verbose",
    ]
    if compress is not None:
        command.append(f"--compress={compress}")
    _run_with_progress(command, tool_env(database), "dumping contents of table", tables, progress)
    return tool.version


def exact_pattern(name: str) -> str:
    """A pg_dump/pg_restore name pattern matching exactly `name` (quoted: no wildcards)."""
    return '"' + name.replace('"', '""') + '"'


def _run_with_progress(
    command: list[str], env: dict[str, str], marker: str, total: int, progress: Progress | None
) -> None:
    """Run a client tool with --verbose; each stderr line with `marker` is a step done."""
    tail: deque[str] = deque(maxlen=30)
    done = 0
    with subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, errors="replace",
    ) as proc:  # fmt: skip
        assert proc.stderr is not None
        for line in proc.stderr:
            if marker in line:
                done += 1
                if progress is not None:
                    progress(min(done, total), total)
            else:
                tail.append(line.rstrip())
        code = proc.wait()
    if code != 0:
        failed(command[0], code, "\n".join(tail))
    if progress is not None:
        progress(total, total)


def failed(tool: str, code: int, output: str) -> None:
    raise ToolProblem(
        f"{Path(tool).name} 失败（退出码 {code}）：{output.strip()}",
        f"{Path(tool).name} failed (exit code {code}): {output.strip()}",
    )


# ---- schemas -------------------------------------------------------------------------------


def connect(database: Database) -> psycopg.Connection[Any]:
    import psycopg

    try:
        return psycopg.connect(
            host=database.host,
            port=database.port,
            user=database.user,
            password=database.password or None,
            dbname=database.dbname,
            connect_timeout=10,
        )
    except psycopg.OperationalError as e:
        raise DomainError(
            f"无法连接 {database.describe()}：{e}", f"cannot connect to {database.describe()}: {e}"
        ) from e


def schema_state(conn: psycopg.Connection[Any], schema: str, events_table: str) -> SchemaState:
    from psycopg import sql

    exists = conn.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)
    ).fetchone()
    if not exists or not exists[0]:
        return SchemaState(False, 0, 0)
    relations = conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s",
        (schema,),
    ).fetchone()
    table = conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename = %s",
        (schema, events_table),
    ).fetchone()
    events = 0
    if table and table[0]:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(events_table)
        )
        found = conn.execute(query).fetchone()
        events = int(found[0]) if found else 0
    return SchemaState(True, int(relations[0]) if relations else 0, events)


def state_of(database: Database, schema: str, events_table: str) -> SchemaState:
    with connect(database) as conn:
        return schema_state(conn, schema, events_table)


def name_with_suffix(base: str, suffix: str) -> str:
    """`base` + `suffix`, `base` shortened so the whole fits PostgreSQL's 63 bytes."""
    room = MAX_NAME - len(suffix.encode())
    short = base.encode()[:room].decode(errors="ignore")
    return short + suffix


def switch_schemas(
    database: Database,
    restored: str,
    target: str,
    keep: str,
    events_table: str,
    *,
    replace: bool,
) -> str | None:
    """In one transaction: move the schema `target` away (renamed to `keep`; dropped only when
    it holds nothing at all) and rename `restored` to `target`. Refused (TargetHoldsEvents) when
    `target` holds events and `replace` is false. Returns the kept schema's name, if any."""
    from psycopg import sql

    kept: str | None = None
    with connect(database) as conn, conn.transaction():
        # the lock bootstrap takes: no process creates tables in the middle of the switch
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('dangliang-bootstrap'))")
        state = schema_state(conn, target, events_table)
        if state.events and not replace:
            raise holds_events(target, state.events)
        if state.exists and state.relations:
            conn.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(target), sql.Identifier(keep)
                )
            )
            kept = keep
        elif state.exists:
            conn.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(target)))
        conn.execute(
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(restored), sql.Identifier(target)
            )
        )
    return kept


def holds_events(where: str, events: int) -> TargetHoldsEvents:
    return TargetHoldsEvents(
        f"目标 {where} 已有 {events:,} 个事件：不会覆盖；如确要替换，请加 --replace（旧库会保留）",
        f"the target {where} already holds {events:,} events and is not overwritten: give "
        "--replace to replace it (the old one is kept)",
    )


def drop_schema(database: Database, schema: str) -> None:
    from psycopg import sql

    with connect(database) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


__all__ = [
    "SchemaState",
    "TargetHoldsEvents",
    "Tool",
    "ToolProblem",
    "client_tool",
    "drop_schema",
    "dump_schema",
    "exact_pattern",
    "holds_events",
    "major_of",
    "name_with_suffix",
    "require_at_least",
    "schema_name",
    "schema_state",
    "snapshot",
    "state_of",
    "switch_schemas",
    "tool_env",
]
