"""`dangliang backup` and `dangliang restore` (备份与恢复).

Registered on the main command group by `dangliang.cli.main`. Exit codes: 0 done; 1 refused
(the restored copy failed verification, the target holds events and --replace was not given,
the backup would overwrite a file), nothing changed; 2 a usage or configuration error (a
missing or too old PostgreSQL client tool).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from dangliang.application.backup import (
    RestoreRefused,
    backup,
    read_manifest,
    restore,
)
from dangliang.cli.common import ProgressLine
from dangliang.domain.errors import DomainError
from dangliang.ledger.postgres_dump import ToolProblem
from dangliang.settings import ENV_DB, Database, Settings, SettingsError

UNITS = {"backup": "", "copy": "bytes", "digest": "bytes", "load": "events", "verify": "events"}


class Phases:
    """One progress line per phase (each with its unit), on the terminal's stderr."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.line: ProgressLine | None = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase:
            self.finish()
            self.phase, self.line = phase, ProgressLine(UNITS.get(phase, "events"))
        assert self.line is not None
        self.line(phase, done, total)

    def finish(self) -> None:
        if self.line is not None:
            self.line.finish()
        self.phase = self.line = None


def _database(ctx: click.Context, db_url: str | None) -> Database:
    try:
        return Settings.from_env(db_url or ctx.find_root().params.get("db_url")).database
    except SettingsError as e:
        raise click.UsageError(str(e)) from e


@contextlib.contextmanager
def _reported(progress: Phases) -> Iterator[None]:
    """Refusals and tool problems as bilingual messages and exit codes."""
    try:
        yield
    except ToolProblem as e:
        progress.finish()
        click.echo(f"错误 / error: {e}", err=True)
        sys.exit(2)
    except RestoreRefused as e:
        progress.finish()
        for problem in e.problems:
            click.echo(f"  {problem}", err=True)
        click.echo(
            "已拒绝恢复：恢复的数据未通过核验，已丢弃；现有数据库未改动 / restore refused: the "
            "restored data failed verification and was discarded; the live database is untouched",
            err=True,
        )
        sys.exit(1)
    except DomainError as e:
        progress.finish()
        click.echo(f"错误 / error: {e}", err=True)
        sys.exit(1)
    finally:
        progress.finish()


_DB_OPTION = click.option(
    "--db",
    "db_url",
    default=None,
    metavar="URL",
    help=f"Database URL (default: ${ENV_DB} or sqlite:///dangliang.db).",
)


def register(main: click.Group) -> None:
    """Add the commands of this module to the `dangliang` group."""

    @main.command("backup")
    @click.argument("path", required=False, type=click.Path(path_type=str))
    @click.option(
        "--compress",
        type=click.IntRange(0, 9),
        default=None,
        help="PostgreSQL only: pg_dump's compression level (0 none; default: pg_dump's own).",
    )
    @_DB_OPTION
    @click.pass_context
    def backup_command(
        ctx: click.Context, path: str | None, compress: int | None, db_url: str | None
    ) -> None:
        """Back up the database (备份) while it is in use, to PATH (a file, or a folder to put
        it in; default dangliang-YYYYmmdd-HHMMSS.sqlite|.pgdump here), with a manifest
        PATH.manifest.json beside it: the log head and chain head it holds, its SHA-256.
        SQLite: an online copy of the file. PostgreSQL: pg_dump of the configured schema
        (pg_dump on PATH, as new as the server)."""
        database = _database(ctx, db_url)
        if path is not None and path.endswith(("/", os.sep)):  # `backup bk/`: a folder
            Path(path).mkdir(parents=True, exist_ok=True)
        progress = Phases()
        click.echo(f"备份 / backing up: {database.describe()}")
        with _reported(progress):
            made = backup(
                database, Path(path) if path else None, compress=compress, progress=progress
            )
        click.echo(f"已备份 / backed up: {made.path}")
        click.echo(f"备份清单 / manifest: {made.manifest_path}")
        for line in made.manifest.lines():
            click.echo(line)

    @main.command("restore")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option(
        "--replace",
        is_flag=True,
        help="Replace a database that already holds events (it is kept under a "
        "before-restore name).",
    )
    @_DB_OPTION
    @click.pass_context
    def restore_command(ctx: click.Context, path: Path, replace: bool, db_url: str | None) -> None:
        """Restore the backup PATH (or its manifest) into the configured database (恢复),
        verified before it is switched in: the file's SHA-256, the hash chain over every
        event, every payout run's recorded chain head and the chain head in the manifest.
        Nothing half restored is left where the live database is; if a check fails it is
        untouched (exit 1). A database that holds events is replaced only with --replace,
        and kept. Stop the workbench and imports first."""
        database = _database(ctx, db_url)
        progress = Phases()
        with _reported(progress):
            _, manifest_file, manifest = read_manifest(path)
            click.echo(f"备份清单 / manifest: {manifest_file}")
            for line in manifest.lines():
                click.echo(line)
            click.echo(f"恢复到 / restoring into: {database.describe()}")
            restored = restore(database, path, replace=replace, progress=progress)
        click.echo("核验 / verified:")
        for line in restored.lines:
            click.echo(f"  {line}")
        click.echo(
            f"已恢复 / restored: {restored.target}, log head {manifest.log_head:,}, "
            f"chain head {manifest.chain_head}"
        )
        if restored.kept:
            click.echo(f"原数据库保留为 / the database it replaced is kept as: {restored.kept}")
