"""`dangliang` command line: the application's commands for people and scripts.

Exit codes: 0 done; 1 the input was refused (every problem is listed, nothing was written);
2 a usage or configuration error.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from dangliang.application import Dangliang, bootstrap, default_actor
from dangliang.domain.errors import DomainError
from dangliang.importers.problems import ProblemsFound
from dangliang.settings import ENV_DB, Settings, SettingsError

F = TypeVar("F", bound=Callable[..., Any])

PHASES_ZH = {"validate": "校验", "write": "写入", "generate": "生成", "registry": "参考数据"}


class ProgressLine:
    """A one-line progress display on a terminal (stderr); silent when not a terminal."""

    def __init__(self, unit: str = "") -> None:
        self.enabled = sys.stderr.isatty()
        self.unit = unit
        self.started = time.monotonic()
        self._last = 0.0
        self._shown = False

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and done < total:
            return
        self._last = now
        pct = f"{100 * done / total:5.1f}%" if total else "     "
        label = PHASES_ZH.get(phase, phase)
        click.echo(
            f"\r{label} {phase:<9} {pct} {done:>12,}/{total:,} {self.unit} "
            f"{now - self.started:6.1f}s",
            nl=False,
            err=True,
        )
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            click.echo("", err=True)


def with_app(func: F) -> F:
    """Add `--db` and `--actor` to a command and hand it a bootstrapped application."""

    @click.option(
        "--db",
        "db_url",
        default=None,
        metavar="URL",
        help=f"Database URL (default: ${ENV_DB} or sqlite:///dangliang.db).",
    )
    @click.option(
        "--actor", default=None, help="Who is acting (default: $DANGLIANG_ACTOR or OS user)."
    )
    @click.pass_context
    @functools.wraps(func)
    def wrapper(ctx: click.Context, db_url: str | None, actor: str | None, **kwargs: Any) -> Any:
        root = ctx.find_root().params
        try:
            settings = Settings.from_env(db_url or root.get("db_url"))
            app = bootstrap(settings)
        except SettingsError as e:
            raise click.UsageError(str(e)) from e
        try:
            return func(app, actor or root.get("actor") or default_actor(), **kwargs)
        except ProblemsFound as e:
            click.echo(e.report(), err=True)
            click.echo(
                f"已拒收：共 {len(e.problems)} 个问题，未写入任何数据 / refused: "
                f"{len(e.problems)} problem(s); nothing was written",
                err=True,
            )
            sys.exit(1)
        except DomainError as e:
            click.echo(f"错误 / error: {e}", err=True)
            sys.exit(1)
        finally:
            app.close()

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_url",
    default=None,
    metavar="URL",
    help=f"Database URL (default: ${ENV_DB} or sqlite:///dangliang.db).",
)
@click.option("--actor", default=None, help="Who is acting (default: $DANGLIANG_ACTOR or OS user).")
def main(db_url: str | None, actor: str | None) -> None:
    """dangliang (当量): workload-equivalent compensation for primary health care."""


@main.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--records", default=10_000, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--year", default=2024, show_default=True, type=int)
@click.option(
    "--format",
    "services_format",
    default="csv",
    show_default=True,
    type=click.Choice(["csv", "csv-bom", "csv-gb18030", "xlsx", "jsonl"]),
)
def generate(out_dir: Path, records: int, seed: int, year: int, services_format: str) -> None:
    """Write a synthetic county (institutions, staff, catalogue, service records)."""
    from dangliang.generator import generate as run

    progress = ProgressLine("rows")
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        progress("generate", done, records)

    county = run(
        out_dir,
        records=records,
        seed=seed,
        year=year,
        services_format=services_format,
        progress=tick,
    )
    progress.finish()
    click.echo(
        f"已生成 / generated in {county.out_dir}: {county.institutions} centres, "
        f"{county.village_clinics} village clinics, {county.staff} staff, {county.items} items, "
        f"{county.records} service records"
    )
    for kind, path in county.files.items():
        click.echo(f"  {kind:<13} {path}")


@main.group()
def institutions() -> None:
    """Institutions (机构) and their establishment headcount."""


@institutions.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_app
def institutions_load(app: Dangliang, actor: str, file: Path) -> None:
    """Load or update institutions from FILE."""
    click.echo(app.load_institutions(file, actor=actor).summary())


@institutions.command("headcount")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_app
def institutions_headcount(app: Dangliang, actor: str, file: Path) -> None:
    """Load establishment headcount (核定编制数) by institution and year from FILE."""
    click.echo(app.load_headcount(file, actor=actor).summary())


@main.group()
def staff() -> None:
    """Staff (人员) and their postings."""


@staff.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_app
def staff_load(app: Dangliang, actor: str, file: Path) -> None:
    """Load or update staff postings from FILE."""
    click.echo(app.load_staff(file, actor=actor).summary())


@main.group(name="catalog")
def catalog() -> None:
    """The service item catalogue (服务项目目录) and its equivalent values."""


@catalog.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_app
def catalog_load(app: Dangliang, actor: str, file: Path) -> None:
    """Load items and dated equivalent values from FILE."""
    click.echo(app.load_catalogue(file, actor=actor).summary())


@main.command(name="import")
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--corrections",
    "corrections_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A corrections / voids file (更正与作废).",
)
@click.option(
    "--skip-bad-rows",
    is_flag=True,
    help="Import the good rows; write the bad ones to FILE.rejects.csv with reasons.",
)
@click.option(
    "--batch-size",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Records per committed transaction.",
)
@with_app
def import_(
    app: Dangliang,
    actor: str,
    file: Path | None,
    corrections_file: Path | None,
    skip_bad_rows: bool,
    batch_size: int,
) -> None:
    """Import service records from FILE (CSV, XLSX or JSON lines)."""
    if file is None and corrections_file is None:
        raise click.UsageError("give a FILE of service records, or --corrections FILE")
    today = date.today()
    if file is not None:
        progress = ProgressLine("rows")
        started = time.monotonic()
        try:
            result = app.import_services(
                file,
                actor=actor,
                today=today,
                skip_bad_rows=skip_bad_rows,
                progress=progress,
                batch_size=batch_size,
            )
        finally:
            progress.finish()
        elapsed = time.monotonic() - started
        if result.problems:
            click.echo("\n".join(str(p) for p in result.problems), err=True)
        rate = f" in {elapsed:.1f}s ({result.rows / elapsed:,.0f} rows/s)" if elapsed > 0 else ""
        click.echo(result.summary() + rate)
    if corrections_file is not None:
        click.echo(app.import_corrections(corrections_file, actor=actor, today=today).summary())


@main.command()
@with_app
def status(app: Dangliang, actor: str) -> None:
    """Show the database, the log head and each projection's position."""
    s = app.status()
    click.echo(f"数据库 / database: {s.database}")
    click.echo(f"日志位置 / log head: {s.head}")
    for name, pos in s.projections.items():
        click.echo(f"  projection {name:<12} {pos} ({'up to date' if pos == s.head else 'behind'})")
    for name, count in s.counts.items():
        click.echo(f"  {name:<16} {count}")


if __name__ == "__main__":  # pragma: no cover
    main()
