"""`dangliang payout …` and `dangliang audit …`: payout runs, their approval, statements,
exact replay and the log's hash chain. Registered on the main group by `dangliang.cli.main`."""

from __future__ import annotations

import json
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from dangliang.application import Dangliang
from dangliang.cli.common import ProgressLine, period_options, with_app
from dangliang.domain.payout import STATES_ZH
from dangliang.domain.periods import Period
from dangliang.ledger.chain import parse_head
from dangliang.payouts import runs as payouts
from dangliang.projections.facts_queries import RunRecord


def register(main: click.Group) -> None:
    @main.group()
    def payout() -> None:
        """Payout runs (支付批次): compute, approve (maker-checker), pay, statements."""

    @payout.command("run")
    @period_options
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def payout_run(
        app: Dangliang, actor: str, month: str | None, year: int | None, as_json: bool
    ) -> None:
        """Compute and record a run: a month's advances (--month, after the month ended) or
        the year-end settlement (--year), with adjustments for closed periods that changed.
        The run is a draft until someone else approves it."""
        if (month is None) == (year is None):
            raise click.UsageError("give --month YYYY-MM (advances) or --year YYYY (settlement)")
        run = app.run_payout(Period.parse(year=year, month=month), actor=actor, today=date.today())
        _show(run, as_json)

    @payout.command("approve")
    @click.argument("run_id", metavar="RUN")
    @click.option("--reference", required=True, help="The approval document (审批单号).")
    @with_app
    def payout_approve(app: Dangliang, actor: str, run_id: str, reference: str) -> None:
        """Approve a draft run; the approver (--actor) must not be who computed it."""
        _show(app.approve_payout(run_id, reference=reference, actor=actor), False)

    @payout.command("reject")
    @click.argument("run_id", metavar="RUN")
    @click.option("--reason", required=True)
    @with_app
    def payout_reject(app: Dangliang, actor: str, run_id: str, reason: str) -> None:
        """Send a draft run back, with the reason; the period can then be run again."""
        _show(app.reject_payout(run_id, reason=reason, actor=actor), False)

    @payout.command("paid")
    @click.argument("run_id", metavar="RUN")
    @click.option("--reference", required=True, help="The payment's reference (支付凭证号).")
    @with_app
    def payout_paid(app: Dangliang, actor: str, run_id: str, reference: str) -> None:
        """Record that an approved run has been paid."""
        _show(app.mark_payout_paid(run_id, reference=reference, actor=actor), False)

    @payout.command("list")
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def payout_list(app: Dangliang, actor: str, as_json: bool) -> None:
        """Every run with its state, position and total payable."""
        runs = sorted(app.payout_runs().values(), key=lambda r: (r.period, r.run_id))
        if as_json:
            rows = [{**payouts.run_json(r), "institutions": None} for r in runs]
            click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        click.echo(
            f"{'批次 run':<14}{'状态 state':<20}{'位置 position':>14}{'应付 payable':>20}  计算人"
        )
        for r in runs:
            state = f"{STATES_ZH[r.state]} {r.state}"
            totals = r.results["totals"]
            payable = Decimal(totals.get("payable", totals.get("total", "0")))
            click.echo(
                f"{r.run_id:<14}{state:<20}{r.position:>14,}{payable:>20,.2f}  {r.computed_by}"
            )

    @payout.command("show")
    @click.argument("run_id", metavar="RUN")
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def payout_show(app: Dangliang, actor: str, run_id: str, as_json: bool) -> None:
        """A run's header and per-institution amounts, adjustments and their causes."""
        _show(app.payout_run(run_id), as_json, detail=True)

    @payout.command("diff")
    @click.argument("run_a", metavar="RUN_A")
    @click.argument("run_b", metavar="RUN_B")
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def payout_diff(app: Dangliang, actor: str, run_a: str, run_b: str, as_json: bool) -> None:
        """What changed between two runs, per institution, and the events that explain it."""
        found = app.diff_payouts(run_a, run_b)
        if as_json:
            click.echo(json.dumps(found, ensure_ascii=False, indent=2))
            return
        a, b = found["from"], found["to"]
        click.echo(
            f"{a['run_id']} (position {a['position']}) → {b['run_id']} (position {b['position']})"
        )
        if not found["institutions"]:
            click.echo("无变化 / no change")
        for row in found["institutions"]:
            click.echo(f"{row['code']} {row['name']}")
            for line in row["changes"]:
                click.echo(f"    变化 change: {line}")
            for line in row["causes"]:
                click.echo(f"    原因 cause: {line}")

    @payout.command("statement")
    @click.argument("run_id", metavar="RUN")
    @click.option(
        "--out",
        "out",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="FILE.xlsx, FILE.csv or FILE.json",
    )
    @with_app
    def payout_statement(app: Dangliang, actor: str, run_id: str, out: Path) -> None:
        """Export a run's statement (支付单): XLSX with Chinese headers, CSV, or JSON."""
        from dangliang.payouts.statements import write_statement

        run = app.payout_run(run_id)
        written = (
            app.write_insurance_statement(run_id, out)
            if run.ledger == "insurance"
            else write_statement(payouts.run_json(run), out)
        )
        click.echo(f"{run_id}: {written}")

    @main.group()
    def distribution() -> None:
        """Performance-pay distribution runs (绩效工资分配批次): approve, pay and replay them
        with `payout approve|reject|paid` and `audit replay` (run ids perf-YYYY[-MM]#N)."""

    @distribution.command("run")
    @period_options
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def distribution_run(
        app: Dangliang, actor: str, month: str | None, year: int | None, as_json: bool
    ) -> None:
        """Record a distribution run: a month's provisional shares (--month) or the year's
        final shares with each person's difference to the approved monthly runs (--year)."""
        if (month is None) == (year is None):
            raise click.UsageError("give --month YYYY-MM (provisional) or --year YYYY (final)")
        run = app.run_distribution(
            Period.parse(year=year, month=month), actor=actor, today=date.today()
        )
        _show(run, as_json, detail=not as_json)

    @distribution.command("payslips")
    @click.argument("run_id", metavar="RUN")
    @click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path))
    @with_app
    def distribution_payslips(app: Dangliang, actor: str, run_id: str, out: Path) -> None:
        """Payslips (工资条, HTML, printable) for everyone in a distribution run, and each
        institution's distribution sheet (绩效工资分配表, XLSX)."""
        written = app.write_payslips(run_id, out)
        sheets = [p for p in written if p.suffix == ".xlsx"]
        click.echo(
            f"{run_id}: {len(written) - len(sheets)} 份工资条 / payslips, {len(sheets)} 张分配表 "
            f"/ sheets in {out}"
        )

    @main.group()
    def audit() -> None:
        """Audit (审计): replay a run exactly; verify the log's hash chain."""

    @audit.command("replay")
    @click.argument("run_id", metavar="RUN")
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def audit_replay(app: Dangliang, actor: str, run_id: str, as_json: bool) -> None:
        """Recompute RUN from the log as it stood at the run's position, with the rule set
        the run recorded, and compare with what it recorded. Exit 1 if anything differs."""
        found = app.replay_payout(run_id)
        if as_json:
            click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        elif found["identical"]:
            click.echo(
                f"{run_id}: 复算一致 / identical to the fen (position {found['position']}, "
                f"results digest and chain head {found['chain_head_now'][:16]} match)"
            )
        else:
            click.echo(f"{run_id}: 复算不一致 / DIFFERENT (position {found['position']}):")
        if not as_json:
            click.echo(f"    {rule_set_line(found)}")
        if not as_json and not found["identical"]:
            if not found["results_digest_ok"]:
                click.echo("    recorded results do not match their recorded digest")
            if found["chain_head_recorded"] != found["chain_head_now"]:
                click.echo(
                    f"    chain head recorded {found['chain_head_recorded']} != now "
                    f"{found['chain_head_now']}"
                )
            for line in found["differences"]:
                click.echo(f"    {line}")
        if not found["identical"]:
            sys.exit(1)

    @audit.command("verify")
    @click.option(
        "--expect",
        default=None,
        metavar="ID:DIGEST",
        help="A chain head from a signed document: the chain must have this digest at that id.",
    )
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def audit_verify(app: Dangliang, actor: str, expect: str | None, as_json: bool) -> None:
        """Recompute the hash chain over every stored event and compare it with the chain kept
        since each event was recorded; name the first event whose bytes, order or presence
        changed. Every run's recorded chain head is checked too. Exit 1 on any problem."""
        try:
            expected = parse_head(expect) if expect else None
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--expect") from e
        line = ProgressLine("events")
        try:
            found = app.verify_log(
                expected_head=expected, progress=lambda done, total: line("verify", done, total)
            )
        finally:
            line.finish()
        if as_json:
            click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        else:
            for line in found["lines"]:
                click.echo(line)
        if not found["ok"]:
            sys.exit(1)

    @audit.command("seal")
    @click.option(
        "--reason",
        required=True,
        help="Why these events may be sealed as they stand (recorded with the seal).",
    )
    @with_app
    def audit_seal(app: Dangliang, actor: str, reason: str) -> None:
        """Seal events that are stored but not sealed into the hash chain — written by a
        version that chained later, or around dangliang — exactly as they stand now, and
        record who did it, when and why. Every write is refused while such events exist.
        Check them first: `audit verify` names each one."""
        found = app.seal_unsealed(actor, reason)
        if not found["sealed"]:
            click.echo("没有未封存的事件 / nothing to seal: every stored event is sealed")
            return
        click.echo(
            f"已封存 {found['sealed']:,} 个事件（第 {found['first']}–{found['last']} 号），"
            f"并记录为事后封存 / sealed {found['sealed']:,} events ({found['first']}–"
            f"{found['last']}), recorded as sealed late by {actor}: {reason}"
        )


def rule_set_line(replay: dict[str, Any]) -> str:
    """`规则版本 / rule set: compensation v1` — and today's when the run's is an older one."""
    line = f"规则版本 / rule set: {replay['rule_set']}"
    if replay["rule_set_current"] != replay["rule_set"]:
        line += f" (当前新批次用 / new runs use {replay['rule_set_current']})"
    return line


def _show(run: RunRecord, as_json: bool, *, detail: bool = False) -> None:
    if run.ledger == "performance":
        _show_distribution(run, as_json, detail=detail)
        return
    doc = payouts.run_json(run)
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    totals = doc["totals"]
    click.echo(
        f"{doc['run_id']} {STATES_ZH[doc['state']]} / {doc['state']} — {doc['kind']} "
        f"{doc['period']}, log position {doc['position']:,} ({doc['position_recorded_at']}), "
        f"chain head {doc['chain_head'][:16]}…"
    )
    click.echo(
        f"    computed by {doc['computed_by']} at {doc['computed_at']}"
        + (
            f"; approved by {doc['approved_by']} ({doc['approval_reference']})"
            if doc["approved_by"]
            else ""
        )
        + (f"; paid ({doc['paid_reference']})" if doc["paid_reference"] else "")
        + (f"; rejected: {doc['rejected_reason']}" if doc["rejected_reason"] else "")
    )
    click.echo(
        f"    policy {doc['policy']['bundle']} ({doc['policy']['parameters_digest'][:12]}), "
        f"rule set {doc['rule_set']}, results digest {doc['results_digest'][:16]}…; "
        f"payable {Decimal(totals['payable']):,.2f} "
        f"(adjustments {Decimal(totals['adjustments']):,.2f})"
    )
    if not detail:
        return
    click.echo(
        f"{'机构':<8}{'合计/基数':>16}{'预拨':>14}{'清算':>14}{'调整':>12}{'本次应付':>16}  名称"
    )
    for row in doc["institutions"]:
        click.echo(
            f"{row['code']:<8}{Decimal(row['total']):>16,.2f}{Decimal(row['advances']):>14,.2f}"
            f"{Decimal(row['settlement']):>14,.2f}{Decimal(row['adjustments']):>12,.2f}"
            f"{Decimal(row['payable']):>16,.2f}  {row['name']}"
        )
        for line in row["adjustment_lines"]:
            click.echo(
                f"    调整 {line['period']} ({line['run_id']}): paid {line['paid']}, now "
                f"{line['new']}, adjustment {line['amount']}"
            )
            for cause in line["causes"]:
                click.echo(f"        {cause}")


def _show_distribution(run: RunRecord, as_json: bool, *, detail: bool) -> None:
    """A performance-pay distribution run (绩效工资分配批次)."""
    if as_json:
        click.echo(
            json.dumps(
                payouts.run_header(run) | {"results": run.results}, ensure_ascii=False, indent=2
            )
        )
        return
    totals = run.results["totals"]
    click.echo(
        f"{run.run_id} {STATES_ZH[run.state]} / {run.state} — performance pay "
        f"{run.period.removeprefix('perf-')}, log position {run.position:,}, chain head "
        f"{run.chain_head[:16]}…; pools {Decimal(totals['pool']):,.2f}, performance pay "
        f"{Decimal(totals['performance_pay']):,.2f}, total {Decimal(totals['total']):,.2f}"
    )
    if not detail:
        return
    for institution in run.results["institutions"]:
        click.echo(f"{institution['code']}: {len(institution['staff'])} staff")
        for person in institution["staff"]:
            extra = (
                f" (provisional {person['provisional_paid']}, difference {person['difference']})"
                if "difference" in person
                else ""
            )
            click.echo(
                f"    {person['staff_id']:<10}{Decimal(person['performance_pay']):>14,.2f}"
                f"{Decimal(person['total']):>14,.2f}  {person['name']}{extra}"
            )
