"""What the two insurance-fund rules (`insurance_deqing`, `insurance_zhijiang`) share: a
computation's step table, text parameters with a fixed set of values, fen splits (largest
remainder, so every split adds up exactly), the year's insured persons and the spending of
some months. Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period
from dangliang.policy.distribution_allocation import allocate
from dangliang.policy.insurance_records import CommunityInputs, FundInputs
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.trace import Rule, Step, StepRecorder


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
