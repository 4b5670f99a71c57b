"""`dangliang demo`: the main job, end to end, on a synthetic county.

On the database the command was given (the embedded SQLite by default): generate a De
Qing-sized county (12 centres with their village clinics, ~600 staff, `records` service
records for one year), load its reference data and inputs, import the records, adopt the
illustrative Zhuji policy, then do what the county does with the year — twelve monthly
advance runs (按月预拨), the year-end settlement (年终清算, against the advances actually
paid) and the staff distribution (绩效工资分配), each approved by a second person
(maker-checker) and marked paid — print a summary per centre, and write every statement and
payslip to the output folder. Then the county's medical-insurance fund (医保基金, 示例数据;
`fund_year.py`): its files imported, the De Qing or Zhijiang bundle adopted, the fund's
advances and year-end settlement recorded the same way, each community's year printed and
every fund run's statement written.

Re-runnable: a period that already has an approved or paid run is reported and skipped, so a
second demo on the same database records no new run (a later change to a closed period is
paid as an adjustment in a later run, never by editing a paid one).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from dangliang.application import Dangliang
from dangliang.demo.fund_year import run_fund
from dangliang.demo.generator import GeneratedCounty, generate
from dangliang.demo.workflow import (
    APPROVAL_REFERENCE,
    PAID_REFERENCE,
    Clock,
    ProgressDisplay,
    ProgressLineFactory,
    checker,
    ljust,
    rjust,
)
from dangliang.domain.payout import PERFORMANCE, STATES_ZH
from dangliang.domain.periods import Period
from dangliang.payouts import runs as payouts
from dangliang.policy.subsidy_records import COMPONENTS
from dangliang.projections.facts_queries import RunRecord

STATEMENTS = "statements"
PAYSLIPS = "payslips"
KINDS = {
    "monthly_advance": "按月预拨 / monthly advance",
    "annual_settlement": "年终清算 / year-end settlement",
    "performance_pay": "绩效工资分配 / staff distribution",
}
SUMMARY_COLUMNS = (  # (key, header, width)
    ("eq_basic_medical", "医疗当量 EU", 15),
    ("eq_basic_public_health", "公卫当量 EU", 14),
    ("basic_medical", "基本医疗", 15),
    ("basic_public_health", "基本公卫", 14),
    ("directive_tasks", "指令任务", 13),
    ("remote_adjustment", "边缘调节", 14),
    ("year_end_bonus", "年终奖", 14),
    ("total", "合计 total", 16),
    ("advances", "已预拨 advances", 16),
    ("settlement", "清算 settlement", 16),
)


def generate_with_progress(
    out_dir: Path, progress: ProgressDisplay, *, records: int, **options: Any
) -> GeneratedCounty:
    """`generate` reporting each row written to `progress` (`dangliang generate`, the demo)."""
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        progress("generate", done, records)

    try:
        return generate(out_dir, records=records, progress=tick, **options)
    finally:
        progress.finish()


def run(
    app: Dangliang,
    actor: str,
    out_dir: Path,
    records: int,
    seed: int,
    year: int,
    *,
    progress_line: ProgressLineFactory,
    insurance: str = "deqing",
    leave_december: bool = False,
) -> Path | None:
    """The demo: every step prints one line or more, with the time it took. `insurance`: the
    fund's rule, `deqing` or `zhijiang` (its built-in bundle is adopted).

    `leave_december` (`demo --serve`): December's service records are not imported but
    written to their own file, and December's advance, the settlement and the distribution
    are left undone, for a person to do in the workbench; returns that file."""
    clock = Clock()
    click.echo(f"数据库 / database: {app.database.describe()}")
    files = _generate(out_dir, records, seed, year, clock, progress_line)
    december = hold_back_month(files, Period(year, 12)) if leave_december else None
    _load_reference(app, actor, files, clock)
    _import(app, actor, files, clock, progress_line)
    parents = _equivalents(app, year, clock)
    _adopt_policy(app, actor, clock)
    _load_performance_inputs(app, actor, files, clock)
    closed = {r.period: r for r in app.payout_runs().values() if r.closes_period}
    months = range(1, 12) if december else range(1, 13)
    advances = [_pay(app, actor, Period(year, m), closed, clock, 7) for m in months]
    if december:
        click.echo(
            f"8–11. 留给工作台 / left for the workbench: {year}年12月 records in {december}, "
            f"December's advance, the settlement and the distribution {clock.lap(8)}"
        )
        _write_documents(app, advances, None, out_dir, clock)
    else:
        settlement = _pay(app, actor, Period(year), closed, clock, 8)
        distribution = _pay(app, actor, Period(year), closed, clock, 9, distribution=True)
        _summary(settlement, parents, clock)
        _distribution_line(distribution, year, clock)
        _write_documents(app, [*advances, settlement], distribution, out_dir, clock)
    run_fund(app, actor, files, year, insurance, out_dir, clock, progress_line)
    click.echo(clock.report())
    return december


def hold_back_month(files: dict[str, Path], month: Period) -> Path:
    """Move `month`'s service records out of the services file into `services-YYYY-MM.csv`
    beside it (streamed: a million rows take a few seconds); `files` then imports the rest."""
    source = files["services"]
    kept = source.with_name(f"services-before-{month.label}.csv")
    held = source.with_name(f"services-{month.label}.csv")
    prefix = f"{month.label}-"
    with (
        source.open(encoding="utf-8", newline="") as rows,
        kept.open("w", encoding="utf-8", newline="") as before,
        held.open("w", encoding="utf-8", newline="") as after,
    ):
        header = next(rows)
        before.write(header)
        after.write(header)
        column = header.rstrip("\r\n").split(",").index("service_date")
        for line in rows:
            (after if line.split(",")[column].startswith(prefix) else before).write(line)
    files["services"] = kept
    return held


# ---- steps 1–6: the county and its inputs ----------------------------------------------------


def _generate(
    out_dir: Path,
    records: int,
    seed: int,
    year: int,
    clock: Clock,
    progress_line: ProgressLineFactory,
) -> dict[str, Path]:
    county = generate_with_progress(
        out_dir, progress_line("rows"), records=records, seed=seed, year=year
    )
    click.echo(
        f"1. 生成示例县 / generated a synthetic county in {out_dir}: "
        f"{county.institutions - county.village_clinics} centres, "
        f"{county.village_clinics} village clinics, {county.staff} staff, "
        f"{county.items} items (illustrative values), {county.records:,} records; "
        f"医保基金 / insurance fund: {county.insured:,} insured, {county.claims:,} claims of "
        f"{year - 1}–{year} (示例数据 / illustrative data) {clock.lap(1)}"
    )
    return county.files


def _load_reference(app: Dangliang, actor: str, files: dict[str, Path], clock: Clock) -> None:
    for load, kind in (
        (app.load_institutions, "institutions"),
        (app.load_headcount, "headcount"),
        (app.load_staff, "staff"),
        (app.load_catalogue, "catalogue"),
    ):
        click.echo(f"2. {load(files[kind], actor=actor).summary()} {clock.lap(2)}")
    for kind in ("scores", "income", "pay-levels", "tasks", "force-majeure"):
        found = app.load_inputs(kind, files[kind.replace("-", "_")], actor=actor)
        click.echo(f"2. {found.summary()} {clock.lap(2)}")


def _import(
    app: Dangliang,
    actor: str,
    files: dict[str, Path],
    clock: Clock,
    progress_line: ProgressLineFactory,
) -> None:
    progress = progress_line("rows")
    try:
        result = app.import_services(
            files["services"], actor=actor, today=date.today(), progress=progress
        )
    finally:
        progress.finish()
    click.echo(f"3. {result.summary()} {clock.lap(3)}")
    progress = progress_line("events")
    try:
        position = app.catch_up(progress=progress)
    finally:
        progress.finish()
    click.echo(f"3. 投影已更新 / projections caught up to log position {position:,} {clock.lap(3)}")


def _equivalents(app: Dangliang, year: int, clock: Clock) -> dict[str, str]:
    """Step 4: the year's equivalents per centre; returns each institution's centre."""
    summary = app.equivalents(str(year))
    # A centre's line includes its village clinics (乡村一体化管理).
    parents = {code: parent or code for code, (_, parent) in app.institutions().items()}
    medical: dict[str, Decimal] = defaultdict(Decimal)
    public_health: dict[str, Decimal] = defaultdict(Decimal)
    counts: dict[str, int] = defaultdict(int)
    for inst in summary["institutions"]:
        centre = parents.get(inst["code"], inst["code"])
        medical[centre] += Decimal(inst["basic_medical"])
        public_health[centre] += Decimal(inst["basic_public_health"])
        counts[centre] += inst["records"]
    click.echo(
        f"4. {year} 年工作当量 / equivalents (log position {summary['position']:,}) {clock.lap(4)}:"
    )
    headers = (("基本医疗 medical", 20), ("基本公卫 public health", 24), ("记录 records", 14))
    click.echo(f"   {ljust('机构', 8)}" + "".join(rjust(h, w) for h, w in headers))
    for code in sorted(counts):
        click.echo(
            f"   {code + '*':<8}{medical[code]:>20,}{public_health[code]:>24,}{counts[code]:>14,}"
        )
    click.echo("   (* a centre with its village clinics)")
    return parents


def _adopt_policy(app: Dangliang, actor: str, clock: Clock) -> None:
    changed, tree = app.adopt_policy(
        "zhuji", reference="演示：诸暨方案示例参数 / demo: illustrative Zhuji bundle", actor=actor
    )
    state = "adopted" if changed else "already in force"
    click.echo(
        f"5. 政策 / policy {tree.source} {state} (示例数值，非官方 / illustrative values) "
        f"{clock.lap(5)}"
    )


def _load_performance_inputs(
    app: Dangliang, actor: str, files: dict[str, Path], clock: Clock
) -> None:
    for kind, key in (
        ("pools", "pools"),
        ("staff-coefficients", "staff_coefficients"),
        ("outside-items", "outside_items"),
    ):
        click.echo(f"6. {app.load_inputs(kind, files[key], actor=actor).summary()} {clock.lap(6)}")


# ---- steps 7–9: the runs ---------------------------------------------------------------------


def _pay(
    app: Dangliang,
    actor: str,
    period: Period,
    closed: Mapping[str, RunRecord],
    clock: Clock,
    step: int,
    *,
    distribution: bool = False,
) -> RunRecord:
    """Record the period's run, approve it (a second person) and mark it paid — or, when the
    period already has an approved or paid run, report that run and record nothing."""
    found = closed.get(f"{PERFORMANCE}{period.label}" if distribution else period.label)
    if found is not None:
        click.echo(
            f"{step}. {_describe(found)}: {STATES_ZH[found.state]} / already {found.state}, "
            f"skipped {clock.lap(step)}"
        )
        return found
    record = app.run_distribution if distribution else app.run_payout
    computed = record(period, actor=actor, today=date.today())
    app.approve_payout(computed.run_id, reference=APPROVAL_REFERENCE, actor=checker(actor))
    paid = app.mark_payout_paid(computed.run_id, reference=PAID_REFERENCE, actor=actor)
    click.echo(
        f"{step}. {_describe(paid)}: computed by {actor}, approved by {checker(actor)}, "
        f"paid ({PAID_REFERENCE}) {clock.lap(step)}"
    )
    return paid


def _describe(run: RunRecord) -> str:
    totals = run.results["totals"]
    if run.ledger == "performance":
        amount = (  # the same parts as the payslips: what is paid beside the pool is named
            f"绩效 performance pay {Decimal(totals['performance_pay']):,.2f} + 总量外 outside "
            f"{Decimal(totals['outside_total']):,.2f} + 年终奖 bonus "
            f"{Decimal(totals['year_end_bonus']):,.2f} = {Decimal(totals['total']):,.2f}"
        )
    else:
        amount = f"payable {Decimal(totals['payable']):,.2f}"
    return f"{KINDS[run.results['kind']]} {run.run_id} {amount}"


# ---- steps 10–11: what was paid, and the documents -------------------------------------------


def _summary(run: RunRecord, parents: Mapping[str, str], clock: Clock) -> None:
    """Step 10: per centre, from the recorded settlement run: equivalents paid, components,
    total, advances paid and the settlement; then the county."""
    rows = _by_centre(run.results["institutions"], parents)
    county: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows.values():
        for key, value in row.items():
            county[key] += value
    click.echo(
        f"10. {run.period} 汇总 / summary (元; equivalents paid, EU; from settlement run "
        f"{run.run_id}, log position {run.position:,}):"
    )
    click.echo("   " + ljust("机构", 6) + "".join(rjust(h, w) for _, h, w in SUMMARY_COLUMNS))
    for code in sorted(rows):
        click.echo(_summary_line(f"{code}*", rows[code]))
    click.echo(_summary_line("全县", county))
    adjustments = county["adjustments"]
    click.echo(
        f"   (* a centre with its village clinics) 全县 / county: total {county['total']:,.2f}, "
        f"advances paid {county['advances']:,.2f}, settlement {county['settlement']:,.2f}"
        + (f", adjustments {adjustments:,.2f}" if adjustments else "")
        + f", payable {county['payable']:,.2f} {clock.lap(10)}"
    )


def _by_centre(
    institutions: Iterable[Mapping[str, Any]], parents: Mapping[str, str]
) -> dict[str, dict[str, Decimal]]:
    rows: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for inst in institutions:
        row = rows[parents.get(inst["code"], inst["code"])]
        for category in ("basic_medical", "basic_public_health"):
            row[f"eq_{category}"] += Decimal(inst["equivalents"][category]["bought"])
        for c in COMPONENTS:
            row[c] += Decimal(inst["components"][c])
        for key in ("total", "advances", "settlement", "adjustments", "payable"):
            row[key] += Decimal(inst[key])
    return rows


def _summary_line(label: str, row: Mapping[str, Decimal]) -> str:
    cells = "".join(
        f"{row[key]:>{width},}" if key.startswith("eq_") else f"{row[key]:>{width},.2f}"
        for key, _, width in SUMMARY_COLUMNS
    )
    return f"   {ljust(label, 6)}{cells}"


def _distribution_line(run: RunRecord, year: int, clock: Clock) -> None:
    institutions = run.results["institutions"]

    def total(key: str) -> Decimal:
        return sum((Decimal(i["totals"][key]) for i in institutions), Decimal(0))

    staff = sum(len(i["staff"]) for i in institutions)
    click.echo(
        f"10. {year} 绩效工资分配 / performance pay: {len(institutions)} institutions, "
        f"{staff} staff; pools {total('pool'):,.2f} + surplus shared "
        f"{total('surplus_redistributed'):,.2f} + floor top-ups paid on top "
        f"{total('floor_top_up_outside'):,.2f} = {total('performance_pay'):,.2f}, to the fen "
        f"(run {run.run_id}); see `dangliang distribute --year {year} --institution C01`, "
        f"`dangliang explain --staff ID --year {year}` {clock.lap(10)}"
    )


def _write_documents(
    app: Dangliang,
    runs: list[RunRecord],
    distribution: RunRecord | None,
    out_dir: Path,
    clock: Clock,
) -> None:
    """Step 11: every payout run's statement (XLSX, one per period) and the distribution
    run's payslips (HTML, one per person and institution) and distribution sheets (XLSX)."""
    from dangliang.payouts.statements import write_statement

    folder = out_dir / STATEMENTS
    folder.mkdir(parents=True, exist_ok=True)
    for r in runs:
        write_statement(payouts.run_json(r), folder / f"{r.period}.xlsx")
    click.echo(
        f"11. 支付单 / statements: {len(runs)} XLSX in {folder} "
        f"({runs[0].period}.xlsx … {runs[-1].period}.xlsx) {clock.lap(11)}"
    )
    if distribution is None:
        return
    written = app.write_payslips(distribution.run_id, out_dir / PAYSLIPS)
    sheets = sum(1 for p in written if p.suffix == ".xlsx")
    click.echo(
        f"11. 工资条 / payslips: {len(written) - sheets} HTML and {sheets} 分配表 / distribution "
        f"sheets (XLSX) in {out_dir / PAYSLIPS} {clock.lap(11)}"
    )
