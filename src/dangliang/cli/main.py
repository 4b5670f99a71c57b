"""`dangliang` command line: the application's commands for people and scripts.

Exit codes: 0 done; 1 the input was refused (every problem is listed, nothing was written);
2 a usage or configuration error.
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from dangliang.application import Dangliang, tune_garbage_collector
from dangliang.cli import (
    api_commands,
    backup_commands,
    compensation_commands,
    insurance_commands,
    payout_commands,
    policy_commands,
    province_commands,
)
from dangliang.cli.common import ProgressLine, as_of_options, echo_lines, with_app
from dangliang.cli.serving import serve_site
from dangliang.demo import county_year
from dangliang.demo.county_year import generate_with_progress
from dangliang.demo.workbench_logins import demo_logins
from dangliang.domain.periods import PERIOD
from dangliang.domain.problems import ProblemsFound
from dangliang.domain.values import utc
from dangliang.settings import ENV_DB, Settings


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
    tune_garbage_collector()


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
    county = generate_with_progress(
        out_dir,
        ProgressLine("rows"),
        records=records,
        seed=seed,
        year=year,
        services_format=services_format,
    )
    click.echo(
        f"已生成 / generated in {county.out_dir}: "
        f"{county.institutions - county.village_clinics} centres, "
        f"{county.village_clinics} village clinics, {county.staff} staff, {county.items} items, "
        f"{county.records} service records"
    )
    for kind, path in county.files.items():
        click.echo(f"  {kind:<13} {path}")


@main.command()
@click.option(
    "--out",
    "out_dir",
    default="demo-out",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option("--records", default=1_000_000, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=2024, show_default=True, type=int)
@click.option(
    "--year",
    default=2024,
    show_default=True,
    type=int,
    callback=lambda _ctx, _param, year: _ended_year(year),
    help="A year that has ended: the demo pays it in full.",
)
@click.option(
    "--insurance",
    type=click.Choice(["deqing", "zhijiang"]),
    default="deqing",
    show_default=True,
    help="The insurance fund's rule: De Qing (monthly advances) or Zhijiang (quarterly).",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Then open the workbench: December, the settlement and the distribution are left "
    "for you to do in the browser; prints the address and the demo logins.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="With --serve: address.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="With --serve."
)
@with_app
def demo(
    app: Dangliang,
    actor: str,
    out_dir: Path,
    records: int,
    seed: int,
    year: int,
    insurance: str,
    serve: bool,
    host: str,
    port: int,
) -> None:
    """The main job on a synthetic county, end to end: generate, load, import; twelve monthly
    advance runs, the year-end settlement and the staff distribution, each approved and paid;
    a summary per centre; statements and payslips in --out; then the medical-insurance fund
    (医保基金): its advances and year-end settlement under --insurance, each approved and
    paid, each community's year, the fund's statements. Re-runnable: periods already paid
    are skipped."""
    december = county_year.run(
        app,
        actor,
        out_dir,
        records,
        seed,
        year,
        progress_line=ProgressLine,
        insurance=insurance,
        leave_december=serve,
    )
    if serve:
        _serve_demo(app, actor, year, december, host, port)


def _serve_demo(
    app: Dangliang, actor: str, year: int, december: Path | None, host: str, port: int
) -> None:
    """The workbench over the demo's database, with a login per role printed once."""
    ctx = click.get_current_context()
    settings = Settings.from_env(ctx.params.get("db_url") or ctx.find_root().params.get("db_url"))
    click.echo("\n演示登录 / demo logins (密码只显示这一次 / passwords shown once):")
    for login in demo_logins(app, actor):
        where = f" {login.institution}" if login.institution else ""
        click.echo(f"  {login.name}  {login.password}   {login.what_zh}{where}")
    click.echo(
        "\n在工作台完成本月工作 / the month's work, in the browser:\n"
        f"  1. 演示管理员：导入 → 上传 {december or '12月服务记录'}（服务记录）\n"
        f"  2. 演示管理员：支付批次 → 计算 {year}年12月 预拨\n"
        "  3. 演示审计员：打开该批次 → 批准（计算人不能批准自己的批次）\n"
        "  4. 演示管理员：标记已支付，下载支付单（XLSX / PDF）\n"
        f"  5. 同样完成 {year}年 年终清算 与 绩效分配，下载工资条（PDF）\n"
        "  6. 点击任意金额，逐级解释到服务记录\n"
    )
    serve_site(settings, host=host, port=port, workers=1)


def _ended_year(year: int) -> int:
    if date.today() <= date(year, 12, 31):
        raise click.BadParameter(
            f"{year} 年尚未结束，演示支付全年 / {year} has not ended and the demo pays a whole "
            f"year: use {date.today().year - 1} or earlier"
        )
    return year


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
            echo_lines(ProblemsFound(result.problems).lines())
        rate = f" in {elapsed:.1f}s ({result.rows / elapsed:,.0f} rows/s)" if elapsed > 0 else ""
        click.echo(result.summary() + rate)
    if corrections_file is not None:
        click.echo(app.import_corrections(corrections_file, actor=actor, today=today).summary())


@main.command()
@click.option(
    "--period", required=True, metavar="YYYY-MM|YYYY", help="A month (2024-03) or a year (2024)."
)
@click.option("--institution", default=None, metavar="CODE", help="Only this institution.")
@click.option(
    "--by",
    type=click.Choice(["staff", "item"]),
    default=None,
    help="Break each institution down by staff member or by item.",
)
@as_of_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@with_app
def equivalents(
    app: Dangliang,
    actor: str,
    period: str,
    institution: str | None,
    by: str | None,
    as_of: datetime | None,
    position: int | None,
    as_json: bool,
) -> None:
    """Workload equivalents (工作当量) per institution for a month or a year."""
    if not PERIOD.fullmatch(period):
        raise click.BadParameter("use YYYY-MM or YYYY, e.g. 2024-03", param_hint="--period")
    result = app.equivalents(
        period, as_of=utc(as_of), position=position, institution=institution, by=by
    )
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    when = f"as of {result['as_of']} " if result["as_of"] else ""
    click.echo(f"工作当量 / equivalents {period} {when}(log position {result['position']})")
    click.echo(
        f"{'机构 institution':<18}{'基本医疗 medical':>20}{'基本公卫 public health':>24}"
        f"{'不达标公卫 non-compliant':>26}{'记录 records':>14}"
    )
    for inst in result["institutions"]:
        click.echo(_equivalents_line(inst["code"], inst))
        for part in inst.get(by or "", []):
            click.echo(_equivalents_line("  " + part["code"], part))


def _equivalents_line(label: str, figures: dict[str, Any]) -> str:
    return (
        f"{label:<18}{figures['basic_medical']:>20}{figures['basic_public_health']:>24}"
        f"{figures['non_compliant_public_health']:>26}{figures['records']:>14,}"
    )


@main.group()
def projections() -> None:
    """Read models built from the log: status and rebuild."""


@projections.command("status")
@with_app
def projections_status(app: Dangliang, actor: str) -> None:
    """Each projection's position against the log head (without catching up)."""
    s = app.projection_status()
    click.echo(f"日志位置 / log head: {s.head}")
    for name, pos in s.projections.items():
        behind = s.head - pos
        state = "up to date" if behind == 0 else f"{behind:,} behind"
        click.echo(f"  {name:<16} {pos:>12,}  {state}")


@projections.command("rebuild")
@click.option(
    "--blue-green",
    is_flag=True,
    help="Build under a new name and switch when caught up; readers never see a half-built view.",
)
@with_app
def projections_rebuild(app: Dangliang, actor: str, blue_green: bool) -> None:
    """Drop every read model and rebuild it from the log."""
    progress = ProgressLine("events")
    started = time.monotonic()
    try:
        head = app.rebuild(blue_green=blue_green, progress=progress)
    finally:
        progress.finish()
    elapsed = time.monotonic() - started
    click.echo(
        f"已重建 / rebuilt to log position {head:,} in {elapsed:.1f}s "
        f"({head / elapsed:,.0f} events/s)"
        if elapsed > 0
        else "rebuilt"
    )


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


# Policy, compensation, payout and audit commands live in their own modules (kept apart for size).
policy_commands.register(main)
compensation_commands.register(main)
payout_commands.register(main)
api_commands.register(main)
insurance_commands.register(main)
backup_commands.register(main)
province_commands.register(main)
