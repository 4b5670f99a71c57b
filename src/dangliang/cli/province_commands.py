"""`dangliang province` (省级汇总): the counties of one PostgreSQL database and their figures."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import click

from dangliang.application.province import Province, ProvinceReport
from dangliang.domain.errors import DomainError
from dangliang.settings import Settings, SettingsError


def _province(ctx: click.Context, db_url: str | None) -> Province:
    try:
        database = Settings.from_env(db_url or ctx.find_root().params.get("db_url")).database
        return Province(database)
    except (SettingsError, DomainError) as e:
        raise click.UsageError(str(e)) from e


def _db_option(func: Any) -> Any:
    return click.option(
        "--db",
        "db_url",
        default=None,
        metavar="URL",
        help="The province's PostgreSQL database (no ?schema=): one schema per county.",
    )(func)


def _text(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def _print(report: ProvinceReport) -> None:
    where = "Citus 协调节点 / through the Citus coordinator" if report.distributed else "PostgreSQL"
    click.echo(
        f"{report.year} 年 {len(report.counties)} 个县 / counties ({where}), "
        f"one query: {report.seconds * 1000:.0f} ms"
    )
    click.echo(
        f"{'县 county':<14}{'记录 records':>14}{'当量 equivalents':>20}{'补偿应付 payable':>20}"
        f"{'已付 paid':>18}{'医保预算 budget':>18}{'支出 spending':>18}{'使用率 use':>12}"
    )
    for c in report.counties:
        use = "—" if c.fund_use is None else f"{c.fund_use:.2%}"
        behind = f"  (当量截至第 {c.cube_position} 号 / cube at {c.cube_position} of {c.log_head})"
        click.echo(
            f"{c.county:<14}{c.records:>14,}{c.equivalents:>20,.4f}{_text(c.subsidy_payable):>20}"
            f"{_text(c.subsidy_paid):>18}{_text(c.fund_budget):>18}{_text(c.fund_spending):>18}"
            f"{use:>12}" + (behind if c.cube_behind else "")
        )
    t = report.totals
    click.echo(
        f"{'合计 total':<14}{int(t['records']):>14,}{t['equivalents']:>20,.4f}"
        f"{_text(t['subsidy_payable']):>20}{_text(t['subsidy_paid']):>18}"
    )


def register(main: click.Group) -> None:
    @main.group()
    def province() -> None:
        """The province (省级汇总): every county of one PostgreSQL database (one schema per
        county, plain or on a Citus cluster), listed and summed by one query."""

    @province.command("counties")
    @_db_option
    @click.pass_context
    def counties_command(ctx: click.Context, db_url: str | None) -> None:
        """List the county schemas (and, on Citus, the worker holding each)."""
        found = _province(ctx, db_url)
        try:
            placed = found.distributed()
            for name in found.counties():
                click.echo(name + (f"  → {placed[name]}" if name in placed else ""))
        finally:
            found.close()

    @province.command("report")
    @click.option("--year", type=int, required=True)
    @click.option("--county", "only", multiple=True, help="Only these counties (repeatable).")
    @click.option("--json", "as_json", is_flag=True)
    @_db_option
    @click.pass_context
    def report_command(
        ctx: click.Context, year: int, only: tuple[str, ...], as_json: bool, db_url: str | None
    ) -> None:
        """Each county's equivalents, subsidy (approved or paid runs) and medical-insurance
        budget use for YEAR, side by side, with the province's totals."""
        found = _province(ctx, db_url)
        try:
            report = found.report(year, list(only) or None)
        except DomainError as e:
            raise click.UsageError(str(e)) from e
        finally:
            found.close()
        if not as_json:
            _print(report)
            return
        doc = {
            "year": report.year,
            "distributed": report.distributed,
            "seconds": round(report.seconds, 4),
            "counties": [
                {
                    **{k: _plain(v) for k, v in vars(c).items()},
                    "equivalents": str(c.equivalents),
                    "fund_use": _plain(c.fund_use),
                }
                for c in report.counties
            ],
            "totals": {k: str(v) for k, v in report.totals.items()},
        }
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value
