"""The De Qing rule of the medical-insurance fund (医保基金 · 德清规则), docs/insurance.md §3.

德清县卫生健康局《持续创新、深化拓展 推进基层卫生健康事业高质量发展》(2024-04-26), quoting
德清县基本医疗保险领导小组会议纪要〔2022〕1号: every pooled fund of the insured is budgeted to
the medical communities (「所有统筹基金包干于医共体」); the budget total follows last year's
spending and the growth rate (「结合上年度基金支出、本年度筹资和基金支出增长率」); per-head
monthly standards by insurance type and age band (「人头月支付标准」); settled monthly and
yearly; a surplus is kept 70% directly and 30% after assessment, an overspend is shared on an
85% base by the assessment.

Steps: 1 budget total, 2 standards (fund level); 3 budget, 4 spending, 5 advance, 6 settlement
(per community). Money in fen; every step records what it read and produced (yuan text).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period
from dangliang.policy.insurance_records import (
    CELLS,
    CommunityInputs,
    CommunityResult,
    FundInputs,
    FundResult,
    fen_of,
    yuan_text,
)
from dangliang.policy.insurance_steps import (
    Run,
    check_period,
    choice,
    insured_persons,
    month_label,
    spent,
)
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.trace import Rule, Step, StepRecorder

DEQING = "德清县医保领导小组会议纪要〔2022〕1号"
STEPS = {
    r.name: r
    for r in (
        Rule(
            "budget_total",
            "医共体年度预算总额",
            "the communities' budget total",
            1,
            f"{DEQING}：结合上年度基金支出、本年度筹资和基金支出增长率，合理确定医共体当年度预算总额",
        ),
        Rule(
            "standards",
            "人头月支付标准",
            "per-head monthly standards",
            2,
            f"{DEQING}：根据不同医保险种参保属地、参保人员年龄结构（60周岁及以下、以上）"
            "确定医共体包干的参保人员和人头月支付标准",
        ),
        Rule(
            "budget",
            "医共体月度预算",
            "the community's monthly budget",
            3,
            f"{DEQING}：所有统筹基金包干于医共体；人头月支付标准",
        ),
        Rule(
            "spending",
            "统筹基金支出",
            "pooled-fund spending",
            4,
            f"{DEQING}：职工和城乡居民医保参保人员年度发生的所有统筹基金包干于医共体",
        ),
        Rule(
            "advance",
            "按月预拨",
            "monthly advance",
            5,
            f"{DEQING}：按照月度和年度两种方式进行医保基金结算；预拨比例 configurable",
        ),
        Rule(
            "settlement",
            "年度结算：结余留用、超支分担",
            "year-end settlement: surplus kept, overspend shared",
            6,
            f"{DEQING}：结余部分的70%直接留用、30%在考核后留用；"
            "以超支部分的85%为基准，医共体实际分担比例与考核结果挂钩",
        ),
    )
}
MODES = ("derived", "fixed")
PERIOD_KEYS = (
    "budget",
    "spending",
    "spending_in_area",
    "spending_out_of_area",
    "balance",
    "advance",
)
YEAR_KEYS = (
    "surplus",
    "retained_direct",
    "retained_assessed",
    "returned_to_fund",
    "overspend",
    "overspend_base",
    "community_bears",
    "fund_bears",
    "final",
)
Standards = dict[int, dict[tuple[str, str], int]]
"""month → (insurance type, age band) → fen per person-month."""


def compute(tree: ParameterTree, fund: FundInputs, period: Period) -> FundResult:
    """Budgets, spending and advances of every community for the period; on a year, the
    settlement (surplus kept or overspend shared) too. A year needs every community's score."""
    check_period(fund, period)
    year_run = period.is_year
    if year_run:
        require_scores(fund)
    run = Run(tree, period.label, STEPS)
    result = FundResult(period.label, "deqing")
    standards, budget_total = fund_standards(run, fund, period, result.steps)
    for code in sorted(fund.communities):
        result.communities[code] = community(
            run, fund.year, fund.communities[code], period, standards, year_run
        )
    totals = result.communities.values()
    result.figures.update(
        prior_spending=fund.prior_spending_fen or 0,
        budget_total=budget_total,
        revenue=fund.revenue_fen or 0,
        budget=sum(c.figures["budget"] for c in totals),
        spending=sum(c.figures["spending"] for c in totals),
    )
    result.counts["insured_persons"] = insured_persons(fund)
    return result


def require_scores(fund: FundInputs) -> None:
    """A year is settled on the assessment: refuse it, naming every community not scored."""
    missing = [code for code in sorted(fund.communities) if fund.communities[code].score is None]
    if missing:
        raise DomainError(
            "；".join(f"医共体 {code} 尚无 {fund.year} 年度考核得分" for code in missing),
            "; ".join(
                f"community {code} has no assessment score for {fund.year}" for code in missing
            ),
        )


# ---- steps 1–2: the budget total and the standards (fund level) -----------------------------


def fund_standards(
    run: Run, fund: FundInputs, period: Period, steps: list[Step]
) -> tuple[Standards, int]:
    """(standards of each month of the period, the budget total B; 0 when standards are fixed)."""
    year, jan1 = fund.year, date(fund.year, 1, 1)
    r = run.step("budget_total", steps)
    mode = choice("deqing.standards.mode", r.param("deqing.standards.mode", jan1).as_text(), MODES)
    if mode == "fixed":
        r.note("人头月支付标准为固定值，不测算预算总额 / fixed standards: no budget total")
        r.outputs(budget_total=yuan_text(0))
        s = run.step("standards", steps)
        s.inputs(mode=mode)
        fixed: Standards = {
            m: {
                (t, b): fen_of(
                    s.param(f"deqing.standards.fixed.{t}.{b}", date(year, m, 1)).as_decimal()
                )
                for t, b in CELLS
            }
            for m in period.months
        }
        s.outputs(standards={month_label(year, m): show(fixed[m]) for m in period.months})
        return fixed, 0
    total = budget_total(r, fund)
    derived = derived_standards(run.step("standards", steps), fund, total)
    return {m: derived for m in period.months}, total


def budget_total(r: StepRecorder, fund: FundInputs) -> int:
    """B = last year's spending × (1 + growth rate), at most revenue × funding cap."""
    jan1 = date(fund.year, 1, 1)
    prior, revenue = fund.prior_spending_fen, fund.revenue_fen
    r.inputs(
        prior_spending=None if prior is None else yuan_text(prior),
        revenue=None if revenue is None else yuan_text(revenue),
    )
    if prior is None:
        raise DomainError(
            "上年度基金支出未知：请导入上年度结算记录，或在医保基金年度数据中填写上年度基金支出",
            "last year's fund spending is unknown: import last year's claims or report it with "
            "the fund year",
        )
    growth = r.param("deqing.growth_rate", jan1).as_decimal()
    grown = fen_of(Decimal(prior) / 100 * (1 + growth))
    total = grown
    cap = r.param("deqing.funding_cap", jan1).optional_decimal()
    if cap is None:
        r.note("未设筹资封顶 / no funding cap")
    elif revenue is None:
        r.note("本年度筹资额未录入，不封顶 / revenue not reported: not capped")
    else:
        limit = fen_of(Decimal(revenue) / 100 * cap)
        r.outputs(funding_limit=yuan_text(limit))
        if limit < grown:
            total = limit
            r.note("按增长率测算的预算超过筹资上限，以上限为准 / capped at revenue × cap")
    r.outputs(grown=yuan_text(grown), budget_total=yuan_text(total))
    return total


def derived_standards(r: StepRecorder, fund: FundInputs, total: int) -> dict[tuple[str, str], int]:
    """standard[cell] = B × w[cell] / Σ (w × 12 × January count), to the fen per person-month."""
    jan1 = date(fund.year, 1, 1)
    r.inputs(mode="derived", budget_total=yuan_text(total))
    weights = {
        (t, b): r.param(f"deqing.standards.weights.{t}.{b}", jan1).as_decimal() for t, b in CELLS
    }
    january = {
        cell: sum(fund.communities[code].enrolled.get((1, *cell), 0) for code in fund.communities)
        for cell in CELLS
    }
    basis = sum((weights[cell] * 12 * january[cell] for cell in CELLS), Decimal(0))
    r.inputs(
        weights={cell_key(cell): weights[cell] for cell in CELLS},
        january_enrolled={cell_key(cell): january[cell] for cell in CELLS},
        weighted_person_months=basis,
    )
    if basis == 0:
        r.note("1月无参保人数（或权重均为 0），标准为 0 / nobody enrolled in January: standards 0")
        standards = dict.fromkeys(CELLS, 0)
    else:
        standards = {cell: fen_of(Decimal(total) * weights[cell] / (basis * 100)) for cell in CELLS}
    r.outputs(standards=show(standards))
    return standards


# ---- steps 3–6: one community -----------------------------------------------------------------


def community(
    run: Run,
    year: int,
    c: CommunityInputs,
    period: Period,
    standards: Standards,
    year_run: bool,
) -> CommunityResult:
    res = CommunityResult(c.code, c.name)
    months = period.months
    r = run.step("budget", res.steps)
    budgets = {
        m: sum(c.enrolled.get((m, t, b), 0) * standards[m][(t, b)] for t, b in CELLS)
        for m in months
    }
    r.inputs(
        enrolled={
            month_label(year, m): {cell_key(cell): c.enrolled.get((m, *cell), 0) for cell in CELLS}
            for m in months
        }
    )
    budget = sum(budgets.values())
    r.outputs(by_month=by_month(year, budgets), budget=yuan_text(budget))

    r = run.step("spending", res.steps)
    in_area, out_of_area = spent(c, months, False), spent(c, months, True)
    spending = in_area + out_of_area
    r.inputs(spending_in_area=yuan_text(in_area), spending_out_of_area=yuan_text(out_of_area))
    r.outputs(spending=yuan_text(spending))
    r.note(
        "参保人员的全部统筹基金支出（含异地就医）计入包干 / all pooled spending, out of area too"
    )

    r = run.step("advance", res.steps)
    advances = {
        m: fen_of(
            Decimal(budgets[m]) / 100 * r.param("advance.ratio", date(year, m, 1)).as_decimal()
        )
        for m in months
    }
    r.inputs(budget=by_month(year, budgets))
    advance = sum(advances.values())
    r.outputs(by_month=by_month(year, advances), advance=yuan_text(advance))

    res.figures.update(
        budget=budget,
        spending=spending,
        spending_in_area=in_area,
        spending_out_of_area=out_of_area,
        balance=budget - spending,
        advance=advance,
    )
    if year_run:
        res.figures.update(settlement(run.step("settlement", res.steps), year, c, budget, spending))
    return res


def settlement(
    r: StepRecorder, year: int, c: CommunityInputs, budget: int, spending: int
) -> dict[str, int]:
    """Surplus: 70% kept, 30% × score/100 kept, the rest back to the fund. Overspend: the
    community bears base × share(score) of an 85% base; the fund the rest."""
    jan1 = date(year, 1, 1)
    score = c.score
    assert score is not None  # require_scores
    r.inputs(budget=yuan_text(budget), spending=yuan_text(spending), score=score)
    out = dict.fromkeys(YEAR_KEYS, 0)
    if spending <= budget:
        direct = r.param("deqing.surplus.direct_share", jan1).as_decimal()
        assessed = r.param("deqing.surplus.assessed_share", jan1).as_decimal()
        if direct + assessed != 1:
            raise DomainError(
                f"结余直接留用比例 {direct} 与考核后留用比例 {assessed} 之和应为 1",
                f"the surplus shares kept directly ({direct}) and after assessment ({assessed}) "
                "must add up to 1",
            )
        surplus = budget - spending
        kept = fen_of(Decimal(surplus) / 100 * direct)
        after = fen_of(Decimal(surplus) / 100 * assessed * score / 100)
        if kept + after > surplus:  # both rounded up by half a fen
            after = surplus - kept
            r.note("两部分四舍五入后超过结余，考核后留用减 1 分 / rounding: assessed part − 1 fen")
        out.update(
            surplus=surplus,
            retained_direct=kept,
            retained_assessed=after,
            returned_to_fund=surplus - kept - after,
            final=spending + kept + after,
        )
    else:
        base_share = r.param("deqing.overspend.base_share", jan1).as_decimal()
        at_0 = r.param("deqing.overspend.share_at_0", jan1).as_decimal()
        at_100 = r.param("deqing.overspend.share_at_100", jan1).as_decimal()
        share = at_0 + (at_100 - at_0) * score / 100
        overspend = spending - budget
        base = fen_of(Decimal(overspend) / 100 * base_share)
        bears = fen_of(Decimal(base) / 100 * share)
        r.outputs(community_share=share)
        out.update(
            overspend=overspend,
            overspend_base=base,
            community_bears=bears,
            fund_bears=overspend - bears,
            final=budget + overspend - bears,
        )
    r.outputs(**{key: yuan_text(fen) for key, fen in out.items()})
    r.note("final 为基金全年应付医共体金额，减去已预拨即为年终结算 / final − advances paid = due")
    return out


def cell_key(cell: tuple[str, str]) -> str:
    return f"{cell[0]}.{cell[1]}"


def show(standards: dict[tuple[str, str], int]) -> dict[str, str]:
    return {cell_key(cell): yuan_text(standards[cell]) for cell in CELLS}


def by_month(year: int, fen: dict[int, int]) -> dict[str, str]:
    return {month_label(year, m): yuan_text(fen[m]) for m in sorted(fen)}
