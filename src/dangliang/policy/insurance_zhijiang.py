"""The Zhijiang rule of the medical-insurance fund (医保基金 · 枝江规则), docs/insurance.md §4.

枝江市卫生计生局《推进市镇村一体化发展 奋力打造基层卫生综合改革示范市》(2017-12-05):
「实行“总额包干、按季预拨、过程监管、结余留用”医保基金支付方式改革，全市新农合基金按总额扣除
预留10%风险金、25元/人大病保险基金及5%外出人员异地就医补偿基金外，全部划拨给2家牵头医院，结余
部分按6:3:1在市镇村三级分配」.

Steps: 1 withholding, 2 allotment (fund level); 3 budget, 4 advance, 5 spending (per
community); 6 the out-of-area fund (fund level); 7 settlement, 8 surplus allocation (per
community, on a year). Money in fen; every step records what it read and produced (yuan text).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period
from dangliang.policy.insurance_records import (
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
    monthly_parts,
    spent,
    split,
)
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.trace import Rule, StepRecorder

ZHIJIANG = "枝江市卫生计生局《推进市镇村一体化发展 奋力打造基层卫生综合改革示范市》"
STEPS = {
    r.name: r
    for r in (
        Rule(
            "withholding",
            "预留风险金、大病保险、异地就医基金",
            "withheld: reserve, critical illness, out of area",
            1,
            f"{ZHIJIANG}：按总额扣除预留10%风险金、25元/人大病保险基金及5%外出人员异地就医补偿基金",
        ),
        Rule(
            "allotment",
            "划拨医共体",
            "allotted to the communities",
            2,
            f"{ZHIJIANG}：全部划拨给2家牵头医院（各医共体份额 configurable）",
        ),
        Rule("budget", "期间预算", "the period's budget", 3, f"{ZHIJIANG}：总额包干"),
        Rule("advance", "按季预拨", "quarterly advance", 4, f"{ZHIJIANG}：按季预拨"),
        Rule(
            "spending",
            "统筹基金支出（市内）",
            "pooled-fund spending in the area",
            5,
            f"{ZHIJIANG}：过程监管；异地就医由5%外出人员异地就医补偿基金支付",
        ),
        Rule(
            "out_of_area_fund",
            "异地就医补偿基金结余",
            "the out-of-area fund's balance",
            6,
            f"{ZHIJIANG}：5%外出人员异地就医补偿基金",
        ),
        Rule(
            "settlement",
            "年度结算：结余留用、超支分担",
            "year-end settlement: surplus kept, overspend shared",
            7,
            f"{ZHIJIANG}：结余留用，结余部分按6:3:1在市镇村三级分配；超支分担 configurable",
        ),
        Rule(
            "surplus_allocation",
            "结余分配到机构",
            "the surplus down to institutions",
            8,
            f"{ZHIJIANG}：结余部分按6:3:1在市镇村三级分配（级内按当量 configurable）",
        ),
    )
}
SHARE_MODES = ("enrolled", "equal")
ALLOCATION_MODES = ("equivalents", "equal")
SPLIT = ("county", "township", "village")
YEAR_KEYS = (
    "surplus",
    "surplus_county",
    "surplus_township",
    "surplus_village",
    "overspend",
    "fund_bears",
    "community_bears",
    "final",
)


def compute(tree: ParameterTree, fund: FundInputs, period: Period) -> FundResult:
    """The year's withholdings and allotments, every community's budget, advances and spending
    for the period; on a year, the settlement and the surplus down to institutions."""
    check_period(fund, period)
    if fund.revenue_fen is None:
        raise DomainError(
            f"尚未录入 {fund.year} 年医保基金筹资额",
            f"the fund's revenue for {fund.year} has not been entered",
        )
    run = Run(tree, period.label, STEPS)
    result = FundResult(period.label, "zhijiang")
    withheld = withhold(run.step("withholding", result.steps), fund, fund.revenue_fen)
    allotments, unallocated = allot(run.step("allotment", result.steps), fund, withheld)
    for code in sorted(fund.communities):
        result.communities[code] = community(
            run, fund.year, fund.communities[code], period, allotments[code]
        )
    r = run.step("out_of_area_fund", result.steps)
    to_date = range(1, period.months[-1] + 1)
    by_community = {
        code: spent(fund.communities[code], to_date, True) for code in sorted(fund.communities)
    }
    out_spent = sum(by_community.values())
    r.inputs(
        out_of_area=yuan_text(withheld["out_of_area"]),
        months=f"{month_label(fund.year, 1)}…{month_label(fund.year, period.months[-1])}",
        spending_by_community={code: yuan_text(fen) for code, fen in by_community.items()},
    )
    r.outputs(
        out_of_area_spending=yuan_text(out_spent),
        out_of_area_balance=yuan_text(withheld["out_of_area"] - out_spent),
    )
    result.figures.update(
        revenue=fund.revenue_fen,
        **withheld,
        unallocated=unallocated,
        out_of_area_spending=out_spent,
        out_of_area_balance=withheld["out_of_area"] - out_spent,
    )
    result.counts["insured_persons"] = insured_persons(fund)
    return result


# ---- steps 1–2: withholding and allotment (fund level) ----------------------------------------


def withhold(r: StepRecorder, fund: FundInputs, total: int) -> dict[str, int]:
    """Reserve, critical illness, out of area — in this order, each at most what is left."""
    jan1 = date(fund.year, 1, 1)
    insured = insured_persons(fund)
    r.inputs(revenue=yuan_text(total), insured_persons=insured)
    wanted = {
        "reserve": fen_of(
            Decimal(total) / 100 * r.param("zhijiang.reserve_ratio", jan1).as_decimal()
        ),
        "critical_illness": fen_of(
            r.param("zhijiang.critical_illness_per_head", jan1).as_decimal() * insured
        ),
        "out_of_area": fen_of(
            Decimal(total) / 100 * r.param("zhijiang.out_of_area_ratio", jan1).as_decimal()
        ),
    }
    left = total
    out: dict[str, int] = {}
    for key, fen in wanted.items():
        out[key] = min(fen, left)
        left -= out[key]
        if out[key] < fen:
            r.note(
                f"{key}: {yuan_text(fen)} 超过剩余额，以剩余 {yuan_text(out[key])} 为限 / capped"
            )
    out["to_communities"] = left
    r.outputs(**{key: yuan_text(fen) for key, fen in out.items()})
    return out


def allot(
    r: StepRecorder, fund: FundInputs, withheld: dict[str, int]
) -> tuple[dict[str, int], int]:
    """(each community's allotment N_c, what found no community): by January enrolment or
    equally, largest remainder."""
    total = withheld["to_communities"]
    path = "zhijiang.community_share"
    mode = choice(path, r.param(path, date(fund.year, 1, 1)).as_text(), SHARE_MODES)
    codes = sorted(fund.communities)
    january = {code: fund.communities[code].enrolled_in(1) for code in codes}
    r.inputs(to_communities=yuan_text(total), mode=mode, january_enrolled=january)
    if not codes:
        r.note("没有医共体，划拨额未分配 / no communities: nothing allotted")
        r.outputs(unallocated=yuan_text(total))
        return {}, total
    weights = {code: Decimal(n) for code, n in january.items()}
    if mode == "equal" or sum(january.values()) == 0:
        if mode == "enrolled":
            r.note("1月无人参保，各医共体平均分配 / nobody enrolled in January: equal shares")
        weights = dict.fromkeys(codes, Decimal(1))
    allotments = split(total, weights)
    r.outputs(
        allotments={code: yuan_text(fen) for code, fen in allotments.items()},
        unallocated=yuan_text(0),
    )
    return allotments, 0


# ---- steps 3–8: one community -----------------------------------------------------------------


def community(
    run: Run, year: int, c: CommunityInputs, period: Period, allotment: int
) -> CommunityResult:
    res = CommunityResult(c.code, c.name)
    months = period.months
    r = run.step("budget", res.steps)
    parts = monthly_parts(allotment)
    budget = sum(parts[m] for m in months)
    r.inputs(allotment=yuan_text(allotment))
    r.outputs(by_month=by_month(year, parts, months), budget=yuan_text(budget))
    r.note("年度划拨额按 12 个月均分，余下的分给前几个月 / 12 equal parts, extra fen first")

    r = run.step("advance", res.steps)
    ratio = r.param("advance.ratio", date(year, 1, 1)).as_decimal()
    advance_total = fen_of(Decimal(allotment) / 100 * ratio)
    advance_parts = monthly_parts(advance_total)
    advance = sum(advance_parts[m] for m in months)
    r.inputs(allotment=yuan_text(allotment), year_advance=yuan_text(advance_total))
    r.outputs(by_month=by_month(year, advance_parts, months), advance=yuan_text(advance))

    r = run.step("spending", res.steps)
    in_area, out_of_area = spent(c, months, False), spent(c, months, True)
    r.inputs(spending_in_area=yuan_text(in_area), spending_out_of_area=yuan_text(out_of_area))
    r.outputs(spending=yuan_text(in_area))
    r.note(
        "异地就医由异地就医补偿基金支付，不计入医共体 / out-of-area claims: the out-of-area fund"
    )

    res.figures.update(
        allotment=allotment,
        budget=budget,
        advance=advance,
        spending=in_area,
        spending_in_area=in_area,
        spending_out_of_area=out_of_area,
        balance=budget - in_area,
    )
    if period.is_year:
        res.figures.update(settlement(run, year, c, allotment, in_area, res))
    return res


def settlement(
    run: Run, year: int, c: CommunityInputs, allotment: int, spending: int, res: CommunityResult
) -> dict[str, int]:
    """Surplus: kept, split 6:3:1 county/township/village. Overspend: the fund bears its share."""
    jan1 = date(year, 1, 1)
    r = run.step("settlement", res.steps)
    r.inputs(allotment=yuan_text(allotment), spending=yuan_text(spending))
    out = dict.fromkeys(YEAR_KEYS, 0)
    if allotment >= spending:
        shares = {
            level: r.param(f"zhijiang.surplus_split.{level}", jan1).as_decimal() for level in SPLIT
        }
        if sum(shares.values()) != 1:
            raise DomainError(
                "结余市镇村三级分配比例之和应为 1：" + "、".join(str(v) for v in shares.values()),
                "the county, township and village surplus shares must add up to 1: "
                + ", ".join(str(v) for v in shares.values()),
            )
        surplus = allotment - spending
        levels = split(surplus, shares)
        out.update(
            surplus=surplus,
            surplus_county=levels["county"],
            surplus_township=levels["township"],
            surplus_village=levels["village"],
            final=allotment,
        )
        if surplus:
            res.allocation = allocate_surplus(
                run.step("surplus_allocation", res.steps), year, c, levels
            )
    else:
        share = r.param("zhijiang.overspend.fund_share", jan1).as_decimal()
        overspend = spending - allotment
        fund_bears = fen_of(Decimal(overspend) / 100 * share)
        out.update(
            overspend=overspend,
            fund_bears=fund_bears,
            community_bears=overspend - fund_bears,
            final=allotment + fund_bears,
        )
    r.outputs(**{key: yuan_text(fen) for key, fen in out.items()})
    r.note("final 为基金全年应付医共体金额，减去已预拨即为年终结算 / final − advances paid = due")
    return out


def allocate_surplus(
    r: StepRecorder, year: int, c: CommunityInputs, levels: dict[str, int]
) -> list[dict[str, Any]]:
    """County part → the lead hospital; township and village parts → the members of that level
    by equivalents (or equally); a level without members → the lead hospital."""
    lead = c.lead_hospital_code
    amounts = {lead: levels["county"]}
    lines = {lead: (c.lead_hospital_name, "county")}
    r.inputs(**{f"surplus_{level}": yuan_text(levels[level]) for level in SPLIT})
    for level in SPLIT[1:]:
        members = sorted((m for m in c.members if m.level == level), key=lambda m: m.code)
        if not members:
            amounts[lead] += levels[level]
            r.note(
                f"{level}: 无该级成员单位，归牵头医院 / no {level} members: to the lead hospital"
            )
            continue
        path = f"zhijiang.surplus_allocation.{level}"
        mode = choice(path, r.param(path, date(year, 1, 1)).as_text(), ALLOCATION_MODES)
        weights = {m.code: m.equivalents for m in members}
        r.inputs(**{f"{level}_equivalents": weights})
        if mode == "equal" or sum(weights.values()) == 0:
            if mode == "equivalents":
                r.note(f"{level}: 当量均为 0，平均分配 / every equivalent is 0: equal parts")
            weights = {m.code: Decimal(1) for m in members}
        for code, fen in split(levels[level], weights).items():
            amounts[code] = amounts.get(code, 0) + fen
        for m in members:
            lines.setdefault(m.code, (m.name, level))
    allocation = [
        {"code": code, "name": name, "level": level, "amount_fen": amounts[code]}
        for code, (name, level) in lines.items()
    ]
    r.outputs(allocation={code: yuan_text(amounts[code]) for code in lines})
    return allocation


def by_month(year: int, parts: dict[int, int], months: list[int]) -> dict[str, str]:
    return {month_label(year, m): yuan_text(parts[m]) for m in months}
