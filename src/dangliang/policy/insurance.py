"""The medical-insurance fund (医保基金): which rule a county follows, and what its rules share.

`compute(tree, fund, period)` reads the text parameter `rule` on 1 January of the year and runs
that rule: `deqing` (`policy.insurance_deqing`: a budget per community from per-head monthly
standards, advanced monthly, surplus kept 70% + 30% after assessment, overspend shared on an
85% base) or `zhijiang` (`policy.insurance_zhijiang`: the year's fund less withholdings
allotted to the communities, advanced quarterly, surplus split 6:3:1 down to institutions).
docs/insurance.md describes both, step by step.

Money is integer fen everywhere; parameters are Decimal yuan or ratios read through a
`StepRecorder`, turned into fen with `fen_of` (ROUND_HALF_UP) at named steps only; splits in
fen are largest remainder (`split`), so every split adds up exactly. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal

from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period
from dangliang.policy.distribution_allocation import allocate
from dangliang.policy.insurance_records import RULES, CommunityInputs, FundInputs, FundResult
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.trace import Rule, Step, StepRecorder

RULE = Rule("rule", "医保基金支付规则", "the fund's rule", 0, "configurable")
FREQUENCIES = ("monthly", "quarterly")


def compute(tree: ParameterTree, fund: FundInputs, period: Period) -> FundResult:
    """The fund's figures and every community's for a month, a quarter or a year, by the rule
    the policy names (`rule` on 1 January of the year)."""
    # The rule modules import this module's helpers, so they are imported here, not above.
    from dangliang.policy import insurance_deqing, insurance_zhijiang

    steps: list[Step] = []
    r = Run(tree, period.label, {RULE.name: RULE}).step(RULE.name, steps)
    rule = choice("rule", r.param("rule", date(period.year, 1, 1)).as_text(), RULES)
    r.outputs(rule=rule)
    module = insurance_deqing if rule == "deqing" else insurance_zhijiang
    result = module.compute(tree, fund, period)
    result.steps[:0] = steps
    return result


def advance_months(tree: ParameterTree, year: int) -> str:
    """`monthly` or `quarterly`: how the fund advances money in `year` (`advance.frequency` on
    1 January), so that a caller can refuse a quarter run when advances are monthly."""
    value = tree.get("advance.frequency", date(year, 1, 1)).as_text()
    return choice("advance.frequency", value, FREQUENCIES)


# ---------------------------------------------------------------------------------------------
# What both rules share


class Run:
    """One computation: the parameter tree, the period label and the rule's step table."""

    def __init__(self, tree: ParameterTree, period: str, rules: Mapping[str, Rule]) -> None:
        self.tree = tree
        self.period = period
        self.rules = rules

    def step(self, rule: str, into: list[Step]) -> StepRecorder:
        step = Step(self.rules[rule], self.period)
        into.append(step)
        return StepRecorder(self.tree, step)


def choice(path: str, value: str, options: Iterable[str]) -> str:
    """A text parameter that must be one of `options`."""
    allowed = tuple(options)
    if value not in allowed:
        raise DomainError(
            f"政策参数 {path} 应为 {'、'.join(allowed)} 之一：{value!r}",
            f"policy parameter {path} must be one of {', '.join(allowed)}: {value!r}",
        )
    return value


def is_year(period: Period) -> bool:
    return period.month is None and period.quarter is None


def check_period(fund: FundInputs, period: Period) -> None:
    if period.year != fund.year:
        raise DomainError(
            f"期间 {period.label} 不在医保基金年度 {fund.year} 内",
            f"the period {period.label} is not in the fund year {fund.year}",
        )


def split(total: int, weights: Mapping[str, Decimal]) -> dict[str, int]:
    """`total` fen in proportion to `weights`, largest remainder (ties: the key sorting first)."""
    parts = allocate(Decimal(total), weights, quantum=Decimal(1))
    return {key: int(parts[key]) for key in sorted(parts)}


def monthly_parts(total: int) -> dict[int, int]:
    """`total` fen in 12 equal parts; the fen left over go to the first months."""
    parts = split(total, {f"{m:02d}": Decimal(1) for m in range(1, 13)})
    return {int(key): fen for key, fen in parts.items()}


def insured_persons(fund: FundInputs) -> int:
    """People enrolled in January (年初参保人数), every community: the year's insured."""
    return sum(fund.communities[code].enrolled_in(1) for code in sorted(fund.communities))


def spent(community: CommunityInputs, months: Iterable[int], out_of_area: bool) -> int:
    """Fen the pooled fund paid for the community's insured in `months`, in or out of area."""
    return sum(community.spending.get((m, out_of_area), 0) for m in months)


def month_label(year: int, month: int) -> str:
    return f"{year}-{month:02d}"
