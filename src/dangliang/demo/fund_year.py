"""`dangliang demo`, its medical-insurance fund (医保基金, 示例数据 / illustrative data): import
the fund's files the generator wrote (`county_fund.py`), adopt the built-in bundle of De Qing
or Zhijiang, record the fund's advances (monthly or quarterly, as `advance.frequency` says)
and the year-end settlement, each approved by the demo's checker and marked paid, print each
community's year — budget, spending, its surplus or overspend and how it is split — and write
every fund run's statement to `<out>/insurance/`.

Re-runnable like the rest of the demo: the imports find every row already present, the bundle
already in force, and a period with an approved or paid fund run is reported and skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from dangliang.application import Dangliang
from dangliang.demo.workflow import (
    APPROVAL_REFERENCE,
    PAID_REFERENCE,
    Clock,
    ProgressLineFactory,
    checker,
    ljust,
)
from dangliang.domain.payout import INSURANCE, STATES_ZH
from dangliang.domain.periods import Period
from dangliang.policy.insurance import advance_months
from dangliang.policy.parameters import ParameterTree
from dangliang.projections.facts_queries import RunRecord

SCHEME = "insurance"
BUNDLES = {"deqing": "deqing_insurance", "zhijiang": "zhijiang_insurance"}
FUND_KINDS = ("communities", "enrolment", "claims", "fund_years", "community_scores")
STATEMENTS = "insurance"
KINDS = {
    "insurance_advance": "医保预拨 / fund advance",
    "insurance_settlement": "医保年终结算 / fund year-end settlement",
}
RULES = {"deqing": "德清规则 / De Qing rule", "zhijiang": "枝江规则 / Zhijiang rule"}
LABEL_WIDTH = 64
AMOUNT_WIDTH = 16


def run_fund(
    app: Dangliang,
    actor: str,
    files: Mapping[str, Path],
    year: int,
    insurance: str,
    out_dir: Path,
    clock: Clock,
    progress_line: ProgressLineFactory,
) -> RunRecord:
    """Steps 12–15 of the demo; returns the recorded year-end fund run."""
    _import(app, actor, files, clock, progress_line)
    tree = _adopt(app, actor, insurance, year, clock)
    closed = {r.period: r for r in app.insurance_runs().values() if r.closes_period}
    if advance_months(tree, year) == "quarterly":
        periods = [Period(year, quarter=q) for q in range(1, 5)]
    else:
        periods = [Period(year, m) for m in range(1, 13)]
    settled = closed.get(f"{INSURANCE}{year}")
    if settled is not None and any(f"{INSURANCE}{p.label}" not in closed for p in periods):
        click.echo(f"13. {year} 已结算 / settled by {settled.run_id}: no other advances")
        periods = [p for p in periods if f"{INSURANCE}{p.label}" in closed]
    runs = [_pay(app, actor, p, closed, clock) for p in [*periods, Period(year)]]
    _summary(app, runs[-1], year, clock)
    _statements(app, runs, out_dir, clock)
    return runs[-1]


# ---- step 12: the fund's files and its policy -------------------------------------------------


def _import(
    app: Dangliang,
    actor: str,
    files: Mapping[str, Path],
    clock: Clock,
    progress_line: ProgressLineFactory,
) -> None:
    for kind in FUND_KINDS:
        progress = progress_line("rows")
        try:
            result = app.import_insurance(
                kind, files[kind], actor=actor, today=date.today(), progress=progress
            )
        finally:
            progress.finish()
        click.echo(f"12. 医保 / fund {result.summary()} {clock.lap(12)}")


def _adopt(app: Dangliang, actor: str, insurance: str, year: int, clock: Clock) -> ParameterTree:
    changed, bundle = app.adopt_policy(
        BUNDLES[insurance],
        reference=f"演示：{RULES[insurance]}示例参数 / demo: illustrative bundle",
        actor=actor,
        scheme=SCHEME,
    )
    tree = app.policy(scheme=SCHEME).tree  # with any later change of a parameter
    state = "adopted" if changed else "already in force"
    click.echo(
        f"12. 医保政策 / fund policy {bundle.source} {state} (示例数值，非官方 / illustrative "
        f"values): 预拨 advances {advance_months(tree, year)} {clock.lap(12)}"
    )
    return tree


# ---- step 13: the fund's runs -----------------------------------------------------------------


def _pay(
    app: Dangliang, actor: str, period: Period, closed: Mapping[str, RunRecord], clock: Clock
) -> RunRecord:
    """Record the period's fund run, approve it (the demo's checker) and mark it paid — or,
    when the period already has an approved or paid run, report that run and record nothing."""
    found = closed.get(f"{INSURANCE}{period.label}")
    if found is not None:
        click.echo(
            f"13. {_describe(found)}: {STATES_ZH[found.state]} / already {found.state}, "
            f"skipped {clock.lap(13)}"
        )
        return found
    computed = app.run_insurance(period, actor=actor, today=date.today())
    app.approve_payout(computed.run_id, reference=APPROVAL_REFERENCE, actor=checker(actor))
    paid = app.mark_payout_paid(computed.run_id, reference=PAID_REFERENCE, actor=actor)
    click.echo(
        f"13. {_describe(paid)}: computed by {actor}, approved by {checker(actor)}, "
        f"paid ({PAID_REFERENCE}) {clock.lap(13)}"
    )
    return paid


def _describe(run: RunRecord) -> str:
    payable = Decimal(run.results["totals"]["payable"])
    return f"{KINDS[run.results['kind']]} {run.run_id} payable {payable:,.2f}"


# ---- step 14: each community's year ------------------------------------------------------------


def _summary(app: Dangliang, run: RunRecord, year: int, clock: Clock) -> None:
    """From the recorded year-end run: the fund's own figures, then per community its budget
    (or allotment), spending, surplus or overspend and its split, what the fund owes for the
    year, the advances paid and the year-end payment."""
    results = run.results
    rule = results["rule"]
    click.echo(
        f"14. {year} 医保基金 / insurance fund (示例数据 / illustrative data; {RULES[rule]}; 元; "
        f"from year-end run {run.run_id}, log position {run.position:,}):"
    )
    ratio = Ratios(app.policy(position=run.position, scheme=SCHEME).tree, year)  # the run's
    fund = results["figures"]
    if rule == "zhijiang":
        insured = results.get("counts", {}).get("insured_persons", 0)
        per_head = ratio.value("zhijiang.critical_illness_per_head")
        click.echo("   基金 fund:")
        _line("筹资 revenue", fund["revenue"])
        _line(f"风险金 reserve ({ratio('zhijiang.reserve_ratio')})", fund["reserve"], 2)
        _line(
            f"大病保险 critical illness ({per_head:f} × {insured:,} insured)",
            fund["critical_illness"],
            2,
        )
        _line(
            f"异地就医 out of area ({ratio('zhijiang.out_of_area_ratio')})", fund["out_of_area"], 2
        )
        _line("划拨医共体 to the communities", fund["to_communities"], 2)
        if Decimal(fund["unallocated"]):
            _line("未分配 unallocated", fund["unallocated"], 2)
        _line("异地就医支出 out-of-area spending", fund["out_of_area_spending"])
        _line("异地就医基金结余 out-of-area balance", fund["out_of_area_balance"])
    else:
        click.echo(
            f"   基金 fund: 上年度支出 last year's spending {_money(fund['prior_spending'])}, "
            f"预算总额 budget total {_money(fund['budget_total'])}, 筹资 revenue "
            f"{_money(fund['revenue'])}"
        )
    # the scores the run read (a run's results do not keep them)
    scores = app.compute_insurance(Period(year), position=run.position).fund.communities
    for row in results["communities"]:
        _community(row, rule, ratio, scores[row["code"]].score)
    click.echo(f"   (年度应拨 final − 已预拨 advances paid = 年终结算 settlement) {clock.lap(14)}")


class Ratios:
    """The policy's ratios on 1 January of the year, as labels ("70%")."""

    def __init__(self, tree: ParameterTree, year: int) -> None:
        self.tree, self.day = tree, date(year, 1, 1)

    def value(self, path: str) -> Decimal:
        return self.tree.get(path, self.day).as_decimal().normalize()

    def __call__(self, path: str) -> str:
        return _percent(self.value(path))


def _community(row: Mapping[str, Any], rule: str, ratio: Ratios, score: Decimal | None) -> None:
    f = row["figures"]
    surplus = Decimal(f["overspend"]) == 0
    outcome = "结余 surplus" if surplus else "超支 overspend"
    click.echo(f"   {row['code']} {row['name']} (考核得分 score {score}): {outcome}")
    if rule == "zhijiang":
        _line("划拨额 allotment", f["allotment"])
        _line("县域内支出 spending in area", f["spending_in_area"])
        _line("(异地就医 out of area: the out-of-area fund's)", f["spending_out_of_area"])
    else:
        _line("预算 budget", f["budget"])
        _line("统筹基金支出 spending", f["spending"])
        _line("(其中异地就医 of which out of area)", f["spending_out_of_area"])
    if surplus:
        _line("结余 surplus", f["surplus"])
        if rule == "zhijiang":
            levels = Counter(a["level"] for a in row["allocation"])
            for level, zh, en, who in (
                ("county", "县级", "county", "lead hospital"),
                ("township", "乡镇", "township", f"{levels['township']} centres"),
                ("village", "村级", "village", f"{levels['village']} clinics"),
            ):
                share = ratio(f"zhijiang.surplus_split.{level}")
                _line(f"{zh} {en}, {who} ({share})", f[f"surplus_{level}"], 2)
        else:
            _line(
                f"直接留用 retained at once ({ratio('deqing.surplus.direct_share')})",
                f["retained_direct"],
                2,
            )
            assessed = ratio("deqing.surplus.assessed_share")
            _line(
                f"考核后留用 retained after assessment ({assessed} × {score}/100)",
                f["retained_assessed"],
                2,
            )
            _line("返还基金 returned to the fund", f["returned_to_fund"], 2)
    else:
        _line("超支 overspend", f["overspend"])
        if rule == "zhijiang":
            shared = f"{ratio('zhijiang.overspend.fund_share')} the fund's"
        else:
            base = ratio("deqing.overspend.base_share")
            _line(f"分担基数 overspend base ({base})", f["overspend_base"], 2)
            at_0 = ratio.value("deqing.overspend.share_at_0")
            at_100 = ratio.value("deqing.overspend.share_at_100")
            bears = at_0 + (at_100 - at_0) * (score or 0) / 100
            shared = f"{_percent(bears)} of the base"
        _line(f"医共体承担 the community's share ({shared})", f["community_bears"], 2)
        _line("基金承担 the fund's share", f["fund_bears"], 2)
    _line("年度应拨 final", f["final"])
    _line("已预拨 advances paid", row["advances_paid"])
    _line("年终结算 settlement", row["settlement"])


def _line(label: str, amount: str, indent: int = 0) -> None:
    text = ljust(" " * (6 + indent) + label, LABEL_WIDTH)
    click.echo(f"{text}{_money(amount):>{AMOUNT_WIDTH}}")


def _money(amount: str) -> str:
    return f"{Decimal(amount):,.2f}"


def _percent(value: Decimal) -> str:
    return f"{(value * 100).normalize():f}%"


# ---- step 15: statements -----------------------------------------------------------------------


def _statements(app: Dangliang, runs: list[RunRecord], out_dir: Path, clock: Clock) -> None:
    folder = out_dir / STATEMENTS
    folder.mkdir(parents=True, exist_ok=True)
    for r in runs:
        app.write_insurance_statement(r.run_id, folder / f"{r.period}.xlsx")
    click.echo(
        f"15. 医保拨付单 / fund statements: {len(runs)} XLSX in {folder} "
        f"({runs[0].period}.xlsx … {runs[-1].period}.xlsx) {clock.lap(15)}"
    )
