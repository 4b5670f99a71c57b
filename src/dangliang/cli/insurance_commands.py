"""`dangliang insurance …`: the medical-insurance fund (医保基金) — its policy, its inputs,
the figures of a month, quarter or year, explain and what-if, and fund runs (advances and the
year-end settlement) with their statements.

A fund run is a payout run of its own ledger (`ins-2024-Q1#1`): `insurance approve|reject|
paid|replay` are the same as `payout …` on it. Same conventions as every command (exit 1 when
input is refused, 2 on usage errors, `--json` for scripts and the API).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from dangliang.application import Dangliang
from dangliang.cli.common import ProgressLine, as_of_options, with_app
from dangliang.cli.payout_commands import rule_set_line
from dangliang.cli.policy_commands import adoption_line, change_line
from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period
from dangliang.domain.values import utc
from dangliang.payouts import runs as payouts
from dangliang.payouts.insurance_statements import FIGURES_ZH

SCHEME = "insurance"


def fund_period(year: int | None, quarter: str | None, month: str | None) -> Period:
    """Exactly one of `--year`, `--quarter`, `--month`."""
    given = [x for x in (year, quarter, month) if x is not None]
    if len(given) != 1:
        raise DomainError(
            "请给出 --year、--quarter 或 --month 之一", "give one of --year, --quarter or --month"
        )
    if quarter is not None:
        return Period.quarter_of(quarter)
    return Period.parse(year=year, month=month)


def period_options(func: Any) -> Any:
    func = click.option(
        "--year",
        type=click.IntRange(1949, 2200),
        default=None,
        help="A year: the year-end settlement (年终清算).",
    )(func)
    func = click.option(
        "--quarter", default=None, metavar="YYYY-Qn", help="A quarter: advances (按季预拨)."
    )(func)
    return click.option(
        "--month", default=None, metavar="YYYY-MM", help="A month: advances (按月预拨)."
    )(func)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _table(rows: list[dict[str, Any]], keys: list[str]) -> None:
    click.echo(
        f"{'医共体 community':<24}" + "".join(f"{FIGURES_ZH.get(k, k)[:8]:>16}" for k in keys)
    )
    for row in rows:
        label = f"{row['code']} {row['name']}"[:22]
        figures = {**row.get("figures", {}), **row}
        click.echo(f"{label:<24}" + "".join(f"{figures.get(k, ''):>16}" for k in keys))


def register(main: click.Group) -> None:
    """Add `dangliang insurance …` to the `dangliang` group."""

    @main.group()
    def insurance() -> None:
        """Medical-insurance fund (医保基金): policy, inputs, figures, runs."""

    # ---- policy ----------------------------------------------------------------------------

    @insurance.group("policy")
    def insurance_policy() -> None:
        """The fund's policy bundle (医保基金政策参数): adopt, change, show."""

    @insurance_policy.command("load")
    @click.argument("source", metavar="FILE|NAME")
    @click.option("--reference", required=True, help="The decision adopting it (文号 / 会议纪要).")
    @with_app
    def policy_load(app: Dangliang, actor: str, source: str, reference: str) -> None:
        """Adopt a fund bundle (a YAML file, or a built-in: deqing_insurance,
        zhijiang_insurance)."""
        changed, tree = app.adopt_policy(source, reference=reference, actor=actor, scheme=SCHEME)
        click.echo(adoption_line(changed, tree))

    @insurance_policy.command("set")
    @click.argument("path")
    @click.argument("value")
    @click.option(
        "--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Effective date."
    )
    @click.option("--reason", required=True, help="Why (文号、会议纪要).")
    @click.option("--approver", required=True, help="Who approved it (医保局、财政).")
    @with_app
    def policy_set(
        app: Dangliang,
        actor: str,
        path: str,
        value: str,
        start: datetime,
        reason: str,
        approver: str,
    ) -> None:
        """Record a dated change of one fund parameter, e.g. the growth rate:
        `insurance policy set deqing.growth_rate 0.05 --from 2025-01-01 --reason … --approver …`."""
        changed = app.change_parameter(
            path,
            value,
            start=start.date(),
            reason=reason,
            approver=approver,
            actor=actor,
            scheme=SCHEME,
        )
        click.echo(change_line(path, value, start, changed))

    @insurance_policy.command("show")
    @click.option(
        "--on",
        "on",
        type=click.DateTime(["%Y-%m-%d"]),
        default=None,
        help="Only the values in force on this day.",
    )
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def policy_show(app: Dangliang, actor: str, on: datetime | None, as_json: bool) -> None:
        """Every fund parameter with its dated values and references."""
        found = app.parameters_in_force(
            on=on.date() if on else None, position=app.catch_up(), scheme=SCHEME
        )
        if as_json:
            _echo_json(found)
            return
        click.echo(
            f"{found['bundle']}  digest {found['digest'][:16]}  position {found['position']}"
        )
        for row in found["parameters"]:
            click.echo(
                f"{row['path']:<44}{row['effective_from']:>12}  {row['value']:<12} "
                f"{row['unit'] or ''}"
            )
            click.echo(f"{'':<4}{row['reference']}")

    # ---- inputs ----------------------------------------------------------------------------

    @insurance.command("import")
    @click.argument("kind", type=click.Choice(sorted(_kinds())))
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option(
        "--skip-bad-rows",
        is_flag=True,
        help="Import the good rows of a bulk file (claims, enrolment); "
        "the rest go to FILE.rejects.csv.",
    )
    @with_app
    def import_(app: Dangliang, actor: str, kind: str, path: Path, skip_bad_rows: bool) -> None:
        """Import a fund file: communities, enrolment, enrolment_counts, claims,
        claim_corrections, enrolment_corrections, fund_years, community_scores
        (CSV, XLSX or JSONL; docs/formats.md). A file with problems is refused whole, every
        problem listed; importing the same file again changes nothing."""
        progress = ProgressLine("rows")
        result = app.import_insurance(
            kind,
            path,
            actor=actor,
            today=datetime.now(UTC).date(),
            skip_bad_rows=skip_bad_rows,
            progress=progress,
        )
        progress.finish()
        click.echo(result.summary())

    @insurance.command("communities")
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def communities(app: Dangliang, actor: str, as_json: bool) -> None:
        """The medical communities (医共体), their lead hospitals and member centres."""
        rows = app.communities()
        if as_json:
            _echo_json(rows)
            return
        for c in rows:
            click.echo(
                f"{c['code']:<10}{c['name']:<20}牵头医院 {c['lead_hospital_code']} "
                f"{c['lead_hospital_name']}  成员 {', '.join(c['members'])}"
            )

    # ---- figures -----------------------------------------------------------------------------

    @insurance.command("compute")
    @period_options
    @as_of_options
    @click.option("--steps", is_flag=True, help="Include every rule step (with --json).")
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def compute(
        app: Dangliang,
        actor: str,
        year: int | None,
        quarter: str | None,
        month: str | None,
        as_of: datetime | None,
        position: int | None,
        steps: bool,
        as_json: bool,
    ) -> None:
        """The fund's figures for a month, quarter or year, per community (nothing recorded)."""
        period = fund_period(year, quarter, month)
        found = app.compute_insurance(period, as_of=utc(as_of), position=position)
        doc = found.as_json(with_steps=steps)
        if as_json:
            _echo_json(doc)
            return
        click.echo(f"医保基金 {period.label}  规则 rule {doc['rule']}  position {doc['position']}")
        for key, value in doc["figures"].items():
            click.echo(f"  {FIGURES_ZH.get(key, key)} {key}: {value}")
        keys = ["budget", "spending", "balance", "advance"] + (["final"] if period.is_year else [])
        _table(doc["communities"], keys)

    @insurance.command("what-if")
    @period_options
    @as_of_options
    @click.option(
        "--set",
        "sets",
        multiple=True,
        required=True,
        metavar="PATH=VALUE",
        help="A parameter's value for the computed period (repeatable).",
    )
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def what_if(
        app: Dangliang,
        actor: str,
        year: int | None,
        quarter: str | None,
        month: str | None,
        as_of: datetime | None,
        position: int | None,
        sets: tuple[str, ...],
        as_json: bool,
    ) -> None:
        """The figures with changed parameters beside the real ones; nothing is written."""
        period = fund_period(year, quarter, month)
        found = app.insurance_what_if(period, sets, as_of=utc(as_of), position=position)
        if as_json:
            _echo_json(found)
            return
        click.echo(f"试算 / what-if {period.label}: {found['scenario']} (nothing written)")
        for row in found["communities"]:
            click.echo(f"{row['code']} {row['name']}")
            for key, v in row["figures"].items():
                click.echo(
                    f"  {FIGURES_ZH.get(key, key):<16} {v['baseline']:>16} → "
                    f"{v['scenario']:>16}  ({v['difference']})"
                )

    @insurance.command("explain")
    @click.option("--community", required=True, help="Community code (医共体编码).")
    @period_options
    @as_of_options
    @click.option(
        "--records",
        type=click.IntRange(min=0),
        default=0,
        help="Also list the first N claims and enrolment rows.",
    )
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def explain(
        app: Dangliang,
        actor: str,
        community: str,
        year: int | None,
        quarter: str | None,
        month: str | None,
        as_of: datetime | None,
        position: int | None,
        records: int,
        as_json: bool,
    ) -> None:
        """Why a community gets what it gets: every rule step with its parameters and
        clauses, the enrolment and spending month by month, and the records behind them."""
        period = fund_period(year, quarter, month)
        found = app.explain_insurance(
            community, period, records=records, as_of=utc(as_of), position=position
        )
        if as_json:
            _echo_json(found)
            return
        click.echo(
            f"{found['community']} {found['name']}  {found['period']}  rule {found['rule']}  "
            f"position {found['position']}  score {found['score']}"
        )
        for step in found["steps"]:
            click.echo(f"\n[{step['domain_step']}] {step['title']}  ({step['clause']})")
            for p in step["parameters"]:
                click.echo(
                    f"    参数 {p['path']} = {p['value']} {p['unit'] or ''} "
                    f"(自 {p['effective_from']}：{p['reference']})"
                )
            for key, value in step["inputs"].items():
                click.echo(f"    输入 {key}: {value}")
            for key, value in step["outputs"].items():
                click.echo(f"    结果 {key}: {value}")
            for note in step["notes"]:
                click.echo(f"    注 {note}")
        click.echo(
            "\n" + "  ".join(f"{FIGURES_ZH.get(k, k)} {v}" for k, v in found["figures"].items())
        )
        for a in found["allocation"]:
            click.echo(f"    结余分配 {a['level']} {a['code']} {a['name']}: {a['amount']}")
        click.echo(f"明细 / records: {found['records_command']}")

    @insurance.command("records")
    @click.option("--community", required=True)
    @click.option("--year", required=True, type=click.IntRange(1949, 2200))
    @click.option("--month", type=click.IntRange(1, 12), default=None)
    @click.option("--limit", type=click.IntRange(min=1), default=None)
    @as_of_options
    @with_app
    def records(
        app: Dangliang,
        actor: str,
        community: str,
        year: int,
        month: int | None,
        limit: int | None,
        as_of: datetime | None,
        position: int | None,
    ) -> None:
        """The claims and enrolment rows behind a community's figures, as JSON."""
        _echo_json(
            app.insurance_records(
                community, year, month=month, limit=limit, as_of=utc(as_of), position=position
            )
        )

    # ---- runs --------------------------------------------------------------------------------

    @insurance.command("run")
    @period_options
    @with_app
    def run(
        app: Dangliang, actor: str, year: int | None, quarter: str | None, month: str | None
    ) -> None:
        """Compute and record a fund run (draft): advances for a month or quarter, the
        settlement for a year. A second person approves it (`insurance approve`)."""
        period = fund_period(year, quarter, month)
        found = app.run_insurance(period, actor=actor, today=datetime.now(UTC).date())
        _show(found, False)

    @insurance.command("list")
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def list_(app: Dangliang, actor: str, as_json: bool) -> None:
        """Every fund run with its state and total payable."""
        runs = sorted(app.insurance_runs().values(), key=lambda r: r.run_id)
        if as_json:
            _echo_json([payouts.run_header(r) for r in runs])
            return
        for r in runs:
            click.echo(
                f"{r.run_id:<18}{r.state:<12}{r.position:>10}"
                f"{r.results['totals'].get('payable', ''):>18}  {r.computed_by}"
            )

    @insurance.command("show")
    @click.argument("run_id", metavar="RUN")
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def show(app: Dangliang, actor: str, run_id: str, as_json: bool) -> None:
        """A fund run: header, each community's figures and what it pays."""
        _show(app.payout_run(run_id), as_json)

    @insurance.command("statement")
    @click.argument("run_id", metavar="RUN")
    @click.option(
        "--out",
        "out",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The file to write: .xlsx, .csv or .json.",
    )
    @with_app
    def statement(app: Dangliang, actor: str, run_id: str, out: Path) -> None:
        """Write a fund run's statement (拨付单)."""
        click.echo(str(app.write_insurance_statement(run_id, out)))

    for verb, help_text in (
        ("approve", "Approve a draft fund run (not by whoever computed it)."),
        ("reject", "Send a draft fund run back, with a reason."),
        ("paid", "Record that an approved fund run has been paid."),
    ):
        _state_command(insurance, verb, help_text)

    @insurance.command("replay")
    @click.argument("run_id", metavar="RUN")
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def replay(app: Dangliang, actor: str, run_id: str, as_json: bool) -> None:
        """Recompute a fund run from the log as it stood, with the rule set it recorded; exit 1
        unless identical."""
        found = app.replay_payout(run_id)
        if as_json:
            _echo_json(found)
        else:
            click.echo(
                ("一致 / identical" if found["identical"] else "不一致 / DIFFERENT")
                + f": {run_id} at position {found['position']}"
            )
            click.echo(f"  {rule_set_line(found)}")
            for line in found["differences"]:
                click.echo(f"  {line}")
        if not found["identical"]:
            raise SystemExit(1)


def _kinds() -> list[str]:
    from dangliang.application import INSURANCE_KINDS

    return list(INSURANCE_KINDS)


def _state_command(group: click.Group, verb: str, help_text: str) -> None:
    option = "--reason" if verb == "reject" else "--reference"

    @group.command(verb, help=help_text)
    @click.argument("run_id", metavar="RUN")
    @click.option(
        option,
        "note",
        required=True,
        help="Why (退回原因)." if verb == "reject" else "The reference (审批单号/支付凭证号).",
    )
    @with_app
    def command(app: Dangliang, actor: str, run_id: str, note: str) -> None:
        if verb == "approve":
            found = app.approve_payout(run_id, reference=note, actor=actor)
        elif verb == "reject":
            found = app.reject_payout(run_id, reason=note, actor=actor)
        else:
            found = app.mark_payout_paid(run_id, reference=note, actor=actor)
        _show(found, False)


def _show(run: Any, as_json: bool) -> None:
    doc = payouts.run_json(run)
    if as_json:
        _echo_json(doc)
        return
    click.echo(
        f"{doc['run_id']}  {doc['state']}  period {doc['period']}  kind {doc['kind']}  "
        f"position {doc['position']}  computed by {doc['computed_by']}"
    )
    keys = (
        ["budget", "spending", "advance"]
        + (
            ["final", "advances_paid", "settlement"]
            if doc["kind"] == "insurance_settlement"
            else []
        )
        + ["adjustments", "payable"]
    )
    _table(doc["communities"], keys)
    click.echo("合计 totals: " + ", ".join(f"{k} {v}" for k, v in doc["totals"].items()))
