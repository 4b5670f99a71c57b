"""Loading a `pg_dump` archive into a schema of another name, in one transaction.

pg_restore cannot rename a schema on the way in, and the live schema must stay untouched
until the restored copy has been checked. So pg_restore turns the archive into its SQL script
(`pg_restore --file=-`), and this module runs that script on one connection, in one
transaction, with the dumped schema's name replaced by a new one in every statement (never in
the rows of a COPY, which pass through as they are). If anything fails, the transaction rolls
back and the new schema never existed.

Only what pg_dump writes for a dangliang schema is run: SET, CREATE, ALTER, COMMENT and COPY
statements and the catalogue's `set_config`/`setval` calls; the dumped schema's own
`CREATE SCHEMA` is skipped (the new one is created first); anything else — a DROP, an UPDATE,
a psql command other than pg_dump's `\\restrict` — refuses the archive. The archive's digest is
checked against its manifest before this runs. (psycopg is imported where a dump is loaded:
a SQLite command imports this module with `backup`.)
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dangliang.ledger.postgres_dump import (
    ToolProblem,
    client_tool,
    connect,
    exact_pattern,
    failed,
    require_at_least,
    tool_env,
)
from dangliang.settings import Database

if TYPE_CHECKING:
    import psycopg

Progress = Callable[[int, int], Any]  # (done, total)

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")
_RUN = re.compile(
    r"(SET|CREATE|ALTER|COMMENT|COPY)\b|SELECT\s+pg_catalog\.(set_config|setval)\s*\(",
    re.IGNORECASE,
)
_SKIP = re.compile(r"(CREATE|ALTER|COMMENT\s+ON)\s+SCHEMA\b", re.IGNORECASE)
_COPY = re.compile(r"COPY\s+(\S+)\s.*FROM\s+stdin\s*;\s*$", re.IGNORECASE | re.DOTALL)
_END_OF_DATA = b"\\.\n"
_CHUNK = 1 << 20


class ArchiveRefused(ToolProblem):
    """The archive holds a statement pg_dump does not write for a dangliang schema."""


def load_dump(
    database: Database,
    archive: Path,
    *,
    dumped_schema: str,
    into_schema: str,
    events_table: str,
    events: int,
    dumped_with: int,
    progress: Progress | None = None,
) -> None:
    """Create `into_schema` and load the archive (of `dumped_schema`) into it, committing
    only if every statement succeeded. `events`: how many rows the events table will hold
    (for progress); `dumped_with`: the major version of the pg_dump that wrote the archive."""
    from psycopg import sql

    tool = client_tool("pg_restore")
    require_at_least(tool, dumped_with, "写备份的 pg_dump", "the pg_dump that wrote the backup")
    command = [
        tool.path,
        "--no-owner",
        "--no-acl",
        f"--schema={dumped_schema}",  # pg_restore takes the name itself, not a pattern
        "--file=-",
        str(archive),
    ]
    script = Script(dumped_schema, into_schema, events_table, events, progress)
    with (
        tempfile.TemporaryFile() as errors,
        connect(database) as conn,
        subprocess.Popen(
            command,
            env=tool_env(database),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
        ) as proc,  # fmt: skip
    ):
        assert proc.stdout is not None
        try:
            with conn.transaction():
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(into_schema)))
                script.run(conn, proc.stdout)
                code = proc.wait()
                if code != 0:
                    errors.seek(0)
                    failed(tool.path, code, errors.read().decode("utf-8", "replace"))
        except BaseException:
            proc.kill()
            raise


class Script:
    """pg_restore's SQL script, statement by statement, the schema renamed."""

    def __init__(
        self,
        dumped_schema: str,
        into_schema: str,
        events_table: str,
        events: int,
        progress: Progress | None,
    ):
        names = [re.escape(exact_pattern(dumped_schema))]
        if re.fullmatch(r"[a-z_][a-z0-9_$]*", dumped_schema):
            names.append(re.escape(dumped_schema))
        # the schema as a qualifier (`public.t`, `"public"."t"`, `'public.seq'`), never as
        # the end of a longer name
        self.qualifier = re.compile(r'(?<![\w$."])(?:' + "|".join(names) + r")(?=\.)")
        self.into = exact_pattern(into_schema)
        self.events_table = events_table
        self.events = events
        self.progress = progress
        self.rows = 0

    def rename(self, statement: str) -> str:
        return self.qualifier.sub(lambda _m: self.into, statement)

    def run(self, conn: psycopg.Connection[Any], lines: Iterable[bytes]) -> None:
        pending: list[str] = []
        quote: str | None = None
        stream = iter(lines)
        for raw in stream:
            line = raw.decode("utf-8")
            if not pending:
                stripped = line.strip()
                if not stripped or stripped.startswith("--"):
                    continue
                if stripped.startswith("\\"):
                    if stripped.split()[0] in ("\\restrict", "\\unrestrict"):
                        continue  # pg_dump's guard against psql commands in the data
                    raise refused(stripped)
            pending.append(line)
            quote, ended = scan(line, quote)
            if not ended:
                continue
            statement = "".join(pending).strip()
            pending = []
            self.execute(conn, statement, stream)
        if pending and "".join(pending).strip():
            raise refused("".join(pending).strip())

    def execute(self, conn: psycopg.Connection[Any], statement: str, stream: Any) -> None:
        if _SKIP.match(statement):
            return
        if not _RUN.match(statement):
            raise refused(statement)
        renamed = self.rename(statement)
        copy = _COPY.match(renamed)
        if copy is None:
            conn.execute(renamed.encode("utf-8"))
            return
        counting = copy.group(1).rsplit(".", 1)[-1].strip('"') == self.events_table
        with conn.cursor() as cursor, cursor.copy(renamed.rstrip().rstrip(";")) as data:
            chunk: list[bytes] = []
            size = 0
            for raw in stream:
                if raw == _END_OF_DATA:
                    break
                chunk.append(raw)
                size += len(raw)
                if size >= _CHUNK:
                    data.write(b"".join(chunk))
                    self._count(len(chunk) if counting else 0)
                    chunk, size = [], 0
            else:
                raise refused(statement.splitlines()[0] + " … (no end of data)")
            if chunk:
                data.write(b"".join(chunk))
                self._count(len(chunk) if counting else 0)

    def _count(self, rows: int) -> None:
        if rows and self.progress is not None:
            self.rows += rows
            self.progress(min(self.rows, self.events), self.events)


def scan(line: str, quote: str | None) -> tuple[str | None, bool]:
    """Carry SQL quoting through one line of a script: the quote still open at its end
    (`'`, `"` or a `$tag$`), and whether the line ends a statement (a `;` outside quotes)."""
    i, n = 0, len(line)
    last = ""
    while i < n:
        if quote is not None:
            end = line.find(quote, i)
            if end < 0:
                return quote, False
            if quote in ("'", '"') and line.startswith(quote, end + 1):
                i = end + 2  # a doubled quote inside the literal
                continue
            i = end + len(quote)
            quote, last = None, "q"
            continue
        c = line[i]
        if c == "-" and line.startswith("--", i):
            break
        if c in ("'", '"'):
            quote = c
            i += 1
            continue
        if c == "$" and (i == 0 or not (line[i - 1].isalnum() or line[i - 1] == "_")):
            tag = _DOLLAR.match(line, i)
            if tag is not None:
                quote = tag.group(0)
                i = tag.end()
                continue
        if not c.isspace():
            last = c
        i += 1
    return quote, quote is None and last == ";"


def refused(statement: str) -> ArchiveRefused:
    shown = statement if len(statement) <= 200 else statement[:200] + "…"
    return ArchiveRefused(
        f"备份中有 dangliang 不会写入的语句，拒绝恢复：{shown}",
        f"the backup holds a statement a dangliang backup never contains; not restored: {shown}",
    )


__all__ = ["ArchiveRefused", "Script", "load_dump", "scan"]
