"""The medical-insurance fund (医保基金): which rule a county follows, and what its rules share.

`compute(tree, fund, period)` reads the text parameter `rule` on 1 January of the year and runs
that rule: `deqing` (`policy.insurance_deqing`: a budget per community from per-head monthly
standards, advanced monthly, surplus kept 70% + 30% after assessment, overspend shared on an
85% base) or `zhijiang` (`policy.insurance_zhijiang`: the year's fund less withholdings
allotted to the communities, advanced quarterly, surplus split 6:3:1 down to institutions).
docs/insurance.md describes both, step by step.

Money is integer fen everywhere; parameters are Decimal yuan or ratios read through a
`StepRecorder`, turned into fen with `fen_of` (ROUND_HALF_UP) at named steps only; splits in
fen are largest remainder (`insurance_steps.split`), so every split adds up exactly. Pure: no
I/O, no clock.
"""

from __future__ import annotations

from datetime import date

from dangliang.domain.periods import Period
from dangliang.policy import insurance_deqing, insurance_zhijiang
from dangliang.policy.insurance_records import RULES, FundInputs, FundResult
from dangliang.policy.insurance_steps import Run, choice
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.trace import Rule, Step

RULE = Rule("rule", "医保基金支付规则", "the fund's rule", 0, "configurable")
FREQUENCIES = ("monthly", "quarterly")


def compute(tree: ParameterTree, fund: FundInputs, period: Period) -> FundResult:
    """The fund's figures and every community's for a month, a quarter or a year, by the rule
    the policy names (`rule` on 1 January of the year)."""
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


def reads_equivalents(tree: ParameterTree, year: int) -> bool:
    """Whether the rule in force in `year` shares a surplus by institutions' equivalents
    (Zhijiang), so that a caller reads the cube only when it is needed."""
    return tree.get("rule", date(year, 1, 1)).as_text() == "zhijiang"
