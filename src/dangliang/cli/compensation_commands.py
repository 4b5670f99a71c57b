"""`dangliang compute`, `distribute`, `explain`, `records`: institution compensation and
performance pay (`policy …` and `inputs …` are in `policy_commands`).

Registered on the main command group by `dangliang.cli.main`; same conventions (exit 1 when input
is refused, 2 on usage errors, `--json` for scripts and the API).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from dangliang.application import Dangliang
from dangliang.calculation.compensation import EXPLAINABLE
from dangliang.cli.common import as_of_options, period_options, with_app
from dangliang.domain.periods import PERIOD, Period
from dangliang.domain.values import utc
from dangliang.policy.parameter_values import show_value
from dangliang.policy.parameters_from_log import value_from_canonical
from dangliang.policy.reform import load_scenario, scenario_from_sets
from dangliang.policy.subsidy_records import COMPONENTS, COMPONENTS_ZH


def register(main: click.Group) -> None:
    """Add the commands of this module to the `dangliang` group."""

    @main.command()
    @period_options
    @click.option("--institution", default=None, metavar="CODE", help="Only show this institution.")
    @click.option(
        "--scenario",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="What-if: a scenario file (changes beside the baseline; nothing is written).",
    )
    @click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="PATH=VALUE",
        help="What-if: a parameter value from the period's start (repeatable).",
    )
    @as_of_options
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @with_app
    def compute(
        app: Dangliang,
        actor: str,
        month: str | None,
        year: int | None,
        institution: str | None,
        scenario: Path | None,
        sets: Sequence[str],
        as_of: datetime | None,
        position: int | None,
        as_json: bool,
    ) -> None:
        """Institution compensation: a month's advances (--month) or the year's settlement
        (--year), per institution; with --scenario/--set, a what-if beside the baseline."""
        period = _period(month, year)
        if scenario is not None or sets:
            tree = app.policy().tree
            plan = (
                load_scenario(scenario, tree)
                if scenario
                else scenario_from_sets(sets, tree, period.first_day)
            )
            if scenario and sets:
                plan = plan + scenario_from_sets(sets, tree, period.first_day)
            diff = app.what_if(period, plan, as_of=utc(as_of), position=position)
            if institution:
                diff["institutions"] = [r for r in diff["institutions"] if r["code"] == institution]
            _print_what_if(diff) if not as_json else click.echo(
                json.dumps(diff, ensure_ascii=False, indent=2)
            )
            return
        computed = app.compute(period, as_of=utc(as_of), position=position)
        out = computed.as_json()
        if institution:
            out["institutions"] = [r for r in out["institutions"] if r["code"] == institution]
        if as_json:
            click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        else:
            _print_computation(out)

    @main.command()
    @period_options
    @click.option("--institution", default=None, metavar="CODE", help="Only this institution.")
    @as_of_options
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @with_app
    def distribute(
        app: Dangliang,
        actor: str,
        month: str | None,
        year: int | None,
        institution: str | None,
        as_of: datetime | None,
        position: int | None,
        as_json: bool,
    ) -> None:
        """Performance pay inside each institution (绩效工资分配): the pool split into base
        and reward parts (reward ≥ 60%), shared by equivalents × coefficients, to the fen."""
        found = app.distribute(
            _period(month, year), institution=institution, as_of=utc(as_of), position=position
        )
        if as_json:
            click.echo(json.dumps(found.as_json(), ensure_ascii=False, indent=2))
            return
        click.echo(f"绩效工资分配 / performance pay {found.period} (log position {found.position})")
        for code, d in sorted(found.distributions.items()):
            click.echo(
                f"{code}: pool {d.pool:,.2f} = base {d.base_pool:,.2f} + reward "
                f"{d.reward_pool:,.2f}; surplus shared {d.surplus_redistributed:,.2f}; "
                f"{len(d.staff)} staff"
            )
            for staff_id, share in sorted(d.staff.items()):
                click.echo(
                    f"    {staff_id:<10}{share.performance_pay:>14,.2f}{share.total:>14,.2f}  "
                    f"{share.name}"
                )
        for warning in found.warnings:
            click.echo(f"注意 / warning: {warning}")

    @main.command()
    @click.option("--institution", default=None, metavar="CODE", help="An institution's amount.")
    @click.option("--staff", default=None, metavar="ID", help="A staff member's performance pay.")
    @period_options
    @click.option(
        "--component",
        type=click.Choice(EXPLAINABLE),
        default=None,
        help="Only this part of the amount.",
    )
    @as_of_options
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output (for the API).")
    @with_app
    def explain(
        app: Dangliang,
        actor: str,
        institution: str | None,
        staff: str | None,
        month: str | None,
        year: int | None,
        component: str | None,
        as_of: datetime | None,
        position: int | None,
        as_json: bool,
    ) -> None:
        """Why an institution gets its amount: rule → parameters (value, effective date,
        reference) → equivalents by item and month → record counts. With --staff: one
        person's performance pay, step by step (绩效工资分配)."""
        if (institution is None) == (staff is None):
            raise click.UsageError("give --institution CODE or --staff ID")
        if staff is not None:
            person = app.explain_staff(
                staff, _period(month, year), as_of=utc(as_of), position=position
            )
            if as_json:
                click.echo(json.dumps(person, ensure_ascii=False, indent=2))
            else:
                _print_staff(person)
            return
        assert institution is not None
        found = app.explain(
            institution,
            _period(month, year),
            component=component,
            as_of=utc(as_of),
            position=position,
        )
        if as_json:
            click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        else:
            _print_explanation(found)

    @main.command()
    @click.option("--institution", required=True, metavar="CODE")
    @click.option("--period", required=True, metavar="YYYY-MM|YYYY")
    @click.option("--item", default=None, metavar="CODE", help="Only this service item.")
    @as_of_options
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    @with_app
    def records(
        app: Dangliang,
        actor: str,
        institution: str,
        period: str,
        item: str | None,
        as_of: datetime | None,
        position: int | None,
        as_json: bool,
    ) -> None:
        """The service records behind an institution's equivalents (记录明细), with their
        source ids, as the log stood at a position: what `explain` points to."""
        if not PERIOD.fullmatch(period):
            raise click.BadParameter("use YYYY-MM or YYYY, e.g. 2024-03", param_hint="--period")
        found = app.records(institution, period, item=item, as_of=utc(as_of), position=position)
        if as_json:
            click.echo(json.dumps(found, ensure_ascii=False, indent=2))
            return
        rows = found["records"]
        click.echo(
            f"{institution} {period}: {len(rows):,} 条记录 / records "
            f"(log position {found['position']})"
        )
        click.echo(
            f"{'来源编号 source_id':<24}{'项目':<8}{'月份':<9}{'人员':<12}{'数量':>12}  达标"
        )
        for r in rows:
            click.echo(
                f"{r['source_id']:<24}{r['item']:<8}{r['month']:<9}{r['staff_id']:<12}"
                f"{r['quantity']:>12}  {'是' if r['compliant'] else '否 non-compliant'}"
            )


def _print_staff(person: dict[str, Any]) -> None:
    click.echo(
        f"{person['staff_id']} {person['period']} 绩效工资 / performance pay "
        f"(log position {person['position']})"
    )
    for part in person["institutions"]:
        share = part["share"]
        click.echo(f"  {part['institution']}: " + _inline(share))
        for step in part["steps"]:
            mine = step.get("staff")
            if mine in (None, {}, []):
                continue
            click.echo(
                f"    [{step['rule']}] {step['title']}: "
                f"{_inline(mine) if isinstance(mine, dict) else mine}"
            )
        rows = part["equivalents_by_item"]
        if rows:
            click.echo("    当量明细 / equivalents by item and month:")
            for r in rows:
                click.echo(
                    f"      {r['item']:<8}{r['month']:<9}{r['quantity']:>12} × "
                    f"{r['equivalent_value']:<8} = {r['equivalents']:>12}  {r['name']}"
                )
            total = sum(Decimal(r["equivalents"]) for r in rows)
            click.echo(f"      合计 / total {total}")


def _period(month: str | None, year: int | None) -> Period:
    if (month is None) == (year is None):
        raise click.UsageError("give --month YYYY-MM (advances) or --year YYYY (settlement)")
    return Period.parse(year=year, month=month)


def _money(text: str) -> str:
    return f"{Decimal(text):,.2f}"


def _print_computation(out: dict[str, Any]) -> None:
    policy = out["policy"]
    annual = out["kind"] == "annual_settlement"
    title = "年终清算 / annual settlement" if annual else "按月预拨 / monthly advances"
    click.echo(
        f"{title} {out['period']} — 政策 / policy {policy['bundle']} "
        f"(parameters {policy['parameters_digest'][:12]}, {len(policy['changes_since'])} change(s) "
        f"since adoption), log position {out['position']}"
    )
    if annual:
        click.echo(
            f"{'机构':<6}{'医疗当量 bm EU':>16}{'公卫当量 ph EU':>16}{'系数 k':>8}"
            f"{'基本医疗':>14}{'基本公卫':>14}{'指令任务':>12}{'边缘调节':>12}{'年终奖':>12}"
            f"{'合计 total':>16}{'已预拨 advances':>16}{'清算 settlement':>17}  名称"
        )
    else:
        click.echo(
            f"{'机构':<6}{'医疗当量 bm EU':>16}{'公卫当量 ph EU':>16}{'暂定系数':>10}"
            f"{'基本医疗':>14}{'基本公卫':>14}{'预拨基数 basis':>16}{'比例':>7}"
            f"{'预拨 advance':>15}  名称"
        )
    for r in out["institutions"]:
        eq, c = r["equivalents"], r["components"]
        bm, ph = eq["basic_medical"]["bought"], eq["basic_public_health"]["bought"]
        head = f"{r['code']:<8}{bm:>16}{ph:>16}"
        if annual:
            click.echo(
                f"{head}{r['coefficient']:>8}{_money(c['basic_medical']):>14}"
                f"{_money(c['basic_public_health']):>14}{_money(c['directive_tasks']):>12}"
                f"{_money(c['remote_adjustment']):>12}{_money(c['year_end_bonus']):>12}"
                f"{_money(r['total']):>16}{_money(r['advances']):>16}"
                f"{_money(r['settlement']):>17}  {r['name']}"
            )
        else:
            click.echo(
                f"{head}{r['coefficient']:>10}{_money(c['basic_medical']):>14}"
                f"{_money(c['basic_public_health']):>14}{_money(r['total']):>16}"
                f"{r.get('advance_ratio', ''):>7}{_money(r['advances']):>15}  {r['name']}"
            )
    t = out["totals"]
    click.echo(
        f"全县合计 / county: total {_money(t['total'])}, advances {_money(t['advances'])}"
        + (f", settlement {_money(t['settlement'])}" if annual else "")
    )
    for r in out["institutions"]:
        for w in r["warnings"]:
            click.echo(f"注意 / warning: {w}")


def _print_what_if(diff: dict[str, Any]) -> None:
    s = diff["scenario"]
    click.echo(
        f"试算 / what-if {diff['period']}: {s['description']} "
        f"(nothing written; log position {diff['position']})"
    )
    for c in s["changes"]:
        click.echo(
            f"  {c['path']} = {c['value']} from {c['from']}"
            + (f" until {c['until']}" if c["until"] else "")
        )
    click.echo(
        f"{'机构':<8}{'基线 baseline':>18}{'方案 scenario':>18}{'差额 difference':>18}  名称"
    )
    for r in diff["institutions"]:
        click.echo(
            f"{r['code']:<8}{_money(r['baseline']):>18}{_money(r['scenario']):>18}"
            f"{_money(r['difference']):>18}  {r['name']}"
        )
    t = diff["totals"]
    click.echo(
        f"{'全县':<8}{_money(t['baseline']):>18}{_money(t['scenario']):>18}{_money(t['difference']):>18}"
    )


def _print_explanation(found: dict[str, Any]) -> None:
    component = found["component"]
    label = (
        "合计 total" if component is None else f"{COMPONENTS_ZH.get(component, '清算')} {component}"
    )
    click.echo(
        f"{found['institution']} {found['name']} {found['period']} — {label} = "
        f"{_money(found['amount'])} 元 "
        f"(log position {found['position']})"
    )
    p = found["policy"]
    click.echo(
        f"政策 / policy: {p['bundle']} adopted at position {p['adopted_at_position']} "
        f"({p['adoption_reference']}); parameters digest {p['parameters_digest'][:16]}"
    )
    for change in p["changes_since"]:
        click.echo(
            f"  调整 / change: {change['path']} = {change['value_json']} from "
            f"{change['start']} — {change['reason']}（批准：{change['approver']}）"
        )
    if component is None:
        r = found["result"]
        click.echo(
            "组成 / components: "
            + ", ".join(f"{COMPONENTS_ZH[c]} {_money(r['components'][c])}" for c in COMPONENTS)
        )
    for step in found["steps"]:
        click.echo(
            f"[第 {step['domain_step']} 步 {step['rule']}] {step['title']} — "
            f"{step['clause']} ({step['period']})"
        )
        for param in step["parameters"]:
            value = show_value(value_from_canonical(param["value"], param["unit"]))
            click.echo(
                f"    参数 {param['path']} = {value} {param['unit']} "
                f"(from {param['effective_from']}; {param['reference']})"
            )
        if step["inputs"]:
            click.echo(f"    输入 inputs: {_inline(step['inputs'])}")
        if step["outputs"]:
            click.echo(f"    结果 result: {_inline(step['outputs'])}")
        for note in step["notes"]:
            click.echo(f"    说明 note: {note}")
    items = found["equivalents_by_item"]
    if items:
        click.echo(
            "当量明细 / equivalents by item and month (quantity × value = equivalents, records):"
        )
        for i in items:
            flag = "" if i["compliant"] else " 不达标 non-compliant"
            click.echo(
                f"    {i['item']:<8}{i['month']:<9}{i['quantity']:>14} × "
                f"{i['equivalent_value']:<8} = {i['equivalents']:>14}  {i['records']:>7,} 条{flag}"
            )
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(found["records"].items()))
    if counts:
        click.echo(f"记录数 / records: {counts} — 列出 / list them: {found['records_command']}")


def _inline(values: dict[str, Any]) -> str:
    def show(v: Any) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {show(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(show(x) for x in v) + "]"
        return "—" if v is None else str(v)

    return "; ".join(f"{k} = {show(v)}" for k, v in values.items())


__all__ = ["as_of_options", "register", "utc"]
