"""Institution compensation (机构补偿), steps 1–4: the equivalents bought and their prices.

The run of one computation (`Run`: the parameter tree and the period its steps are recorded
under); the equivalents bought per category and month (steps 1–3: equivalents, growth cap,
force-majeure top-up); and the price each is bought at (step 4: a fixed unit price, or a point
value of budget over county equivalents, provisional per month and final on the year).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from dangliang.policy.parameter_values import ParameterLookupError
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.subsidy_records import (
    CATEGORIES,
    MONTHS,
    ONE,
    POINT_VALUE_QUANTUM,
    RULES,
    ZERO,
    Equivalents,
    InstitutionInputs,
    distinct_prices,
    round_eu,
    yuan,
)
from dangliang.policy.trace import Step, StepRecorder


class Run:
    """One computation: the parameter tree and the steps recorded so far."""

    def __init__(self, tree: ParameterTree, period: str) -> None:
        self.tree = tree
        self.period = period

    def step(self, rule: str, into: list[Step]) -> StepRecorder:
        step = Step(RULES[rule], self.period)
        into.append(step)
        return StepRecorder(self.tree, step)


# ---- steps 1–3: equivalents bought ------------------------------------------------------------


def bought_equivalents(
    run: Run,
    year: int,
    inst: InstitutionInputs,
    months: tuple[int, ...],
    steps: list[Step],
    *,
    cap: bool = True,
) -> dict[str, Equivalents]:
    r = run.step("equivalents", steps)
    out = {c: Equivalents() for c in CATEGORIES}
    for c in CATEGORIES:
        out[c].actual = sum((inst.eu(c, m) for m in months), ZERO)
        out[c].previous_year = sum((inst.eu_previous(c, m) for m in months), ZERO)
        out[c].by_month = {m: inst.eu(c, m) for m in months}
    out["basic_public_health"].non_compliant = sum(
        (round_eu(inst.non_compliant.get(m, ZERO)) for m in months), ZERO
    )
    r.inputs(by_month={c: out[c].by_month.copy() for c in CATEGORIES})
    r.outputs(**{c: out[c].actual for c in CATEGORIES})
    r.outputs(non_compliant_public_health=out["basic_public_health"].non_compliant)
    if cap:
        _growth_cap(run.step("growth_cap", steps), year, out["basic_medical"])
    _force_majeure(run.step("force_majeure", steps), year, inst, months, out)
    for e in out.values():
        e.bought = sum(e.by_month.values(), ZERO)
    return out


def _growth_cap(r: StepRecorder, year: int, bm: Equivalents) -> None:
    """诸暨方案 二(四)3：「基本医疗年度当量增长不超过10%」. The excess is taken from the last
    months: the equivalents done after the cap was reached are the ones not bought."""
    cap = r.param("basic_medical_growth_cap", date(year, 1, 1)).optional_decimal()
    r.inputs(actual=bm.actual, previous_year=bm.previous_year)
    if cap is None:
        r.note("增长上限未启用 / no growth cap")
        return
    if bm.previous_year == 0:
        r.note("上年无基本医疗当量，不设上限 / no equivalents last year: no cap")
        return
    bm.cap_limit = round_eu(bm.previous_year * (ONE + cap))
    bm.excess = max(ZERO, bm.actual - bm.cap_limit)
    left = bm.excess
    for month in sorted(bm.by_month, reverse=True):
        taken = min(left, bm.by_month[month])
        bm.by_month[month] -= taken
        left -= taken
    r.outputs(cap_limit=bm.cap_limit, excess=bm.excess, bought=bm.actual - bm.excess)


def _force_majeure(
    r: StepRecorder,
    year: int,
    inst: InstitutionInputs,
    months: tuple[int, ...],
    out: dict[str, Equivalents],
) -> None:
    """诸暨方案 二(四)3：「因疫情等不可抗因素造成的工作当量下降，参照上一年度予以补足」."""
    declared = sorted(m for m in months if m in inst.force_majeure)
    r.inputs(declared_months=declared)
    if not declared:
        return
    on = r.param("force_majeure_top_up", date(year, 1, 1)).as_bool()
    if not on:
        r.note("不可抗力补足未启用 / force-majeure top-up is off")
        return
    for c in CATEGORIES:
        for m in declared:
            top_up = max(ZERO, inst.eu_previous(c, m) - inst.eu(c, m))
            out[c].top_up += top_up
            out[c].by_month[m] += top_up
    r.outputs(**{f"top_up_{c}": out[c].top_up for c in CATEGORIES})


# ---- step 4: prices ---------------------------------------------------------------------------

Prices = dict[str, dict[int, Decimal]]  # category → month → 元/当量


PRICING_MODES = ("fixed", "point_value")
COEFFICIENT_MODES = ("linear", "bands")


def _mode(run: Run, year: int) -> str:
    """The pricing mode of the year: one of PRICING_MODES, the same in every month (a county
    changes how it prices from 1 January, never within a settlement year)."""
    modes = {run.tree.get("pricing.mode", date(year, m, 1)).as_text() for m in MONTHS}
    if len(modes) > 1:
        raise ParameterLookupError(
            f"pricing.mode 在 {year} 年内变化（{'、'.join(sorted(modes))}）："
            "定价方式只能自 1 月 1 日起变更",
            f"pricing.mode changes within {year} ({', '.join(sorted(modes))}): "
            "change the pricing mode from 1 January only",
        )
    return choice("pricing.mode", modes.pop(), PRICING_MODES)


def choice(path: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ParameterLookupError(
            f"政策参数 {path} 的值 {value!r} 无效；可选：{', '.join(allowed)}",
            f"policy parameter {path} is {value!r}; it must be one of: {', '.join(allowed)}",
        )
    return value


def annual_prices(
    run: Run, year: int, bought: Mapping[str, Mapping[str, Equivalents]], steps: list[Step]
) -> Prices:
    jan1 = date(year, 1, 1)
    if _mode(run, year) == "fixed":
        return _fixed_prices(run, year, MONTHS, steps)
    r = run.step("point_value", steps)
    r.param("pricing.mode", jan1)
    if not r.param("pricing.final_at_year_end", jan1).as_bool():
        r.note("点值不在年终重算，按各月暂定点值 / monthly point values are final")
        prices: Prices = {c: {} for c in CATEGORIES}
        for m in MONTHS:
            month = month_prices(run, year, m, _one_month(bought, m), steps)
            for c in CATEGORIES:
                prices[c][m] = month[c][m]
        return prices
    totals = {c: sum((b[c].bought for b in bought.values()), ZERO) for c in CATEGORIES}
    point = _point_values(r, jan1, ONE, totals)
    return {c: dict.fromkeys(MONTHS, point[c]) for c in CATEGORIES}


def month_prices(
    run: Run,
    year: int,
    month: int,
    bought: Mapping[str, Mapping[str, Equivalents]],
    steps: list[Step],
) -> Prices:
    first = date(year, month, 1)
    if _mode(run, year) == "fixed":
        return _fixed_prices(run, year, (month,), steps)
    r = run.step("point_value", steps)
    r.param("pricing.mode", first)
    if not r.param("pricing.provisional_monthly", date(year, 1, 1)).as_bool():
        r.note(
            "本县不按月暂定点值；预拨仍按当月预算与当量暂算 / advances still use a month's value"
        )
    totals = {
        c: sum((b[c].by_month.get(month, ZERO) for b in bought.values()), ZERO) for c in CATEGORIES
    }
    point = _point_values(r, date(year, 1, 1), Decimal(12), totals)
    return {c: {month: point[c]} for c in CATEGORIES}


def _fixed_prices(run: Run, year: int, months: tuple[int, ...], steps: list[Step]) -> Prices:
    """诸暨方案 二(四)3：「明确标准当量单价固定」: a price per category, dated by month."""
    r = run.step("unit_price", steps)
    for m in months:
        r.param("pricing.mode", date(year, m, 1))
    prices: Prices = {
        c: {m: r.param(f"unit_price.{c}", date(year, m, 1)).as_decimal() for m in months}
        for c in CATEGORIES
    }
    r.outputs(**{c: distinct_prices(p) for c, p in prices.items()})
    return prices


def _point_values(
    r: StepRecorder, jan1: date, share: Decimal, totals: Mapping[str, Decimal]
) -> dict[str, Decimal]:
    """point value = budget ÷ `share` × (1 − reserve) ÷ county equivalents, to 6 places.

    `share` is 12 for a provisional monthly value (a twelfth of the year's budget), 1 for the
    final value of the year. With no equivalents in the county there is nothing to buy: 0.
    """
    reserve = r.param("pricing.reserve_ratio", jan1).optional_decimal() or ZERO
    out: dict[str, Decimal] = {}
    for c in CATEGORIES:
        budget = r.param(f"budget.{c}", jan1).as_decimal()
        available = budget / share * (ONE - reserve)
        out[c] = (
            (available / totals[c]).quantize(POINT_VALUE_QUANTUM, rounding=ROUND_HALF_UP)
            if totals[c]
            else ZERO
        )
        r.outputs(
            **{
                f"{c}_budget": yuan(budget / share),
                f"{c}_reserve": yuan(budget / share * reserve),
                f"{c}_county_equivalents": totals[c],
                f"{c}_point_value": out[c],
            }
        )
    return out


def _one_month(
    bought: Mapping[str, Mapping[str, Equivalents]], month: int
) -> dict[str, dict[str, Equivalents]]:
    return {
        code: {c: Equivalents(by_month={month: e.by_month.get(month, ZERO)}) for c, e in b.items()}
        for code, b in bought.items()
    }
