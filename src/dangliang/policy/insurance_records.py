"""What the insurance-fund rules (医保基金规则) read and produce: a fund's year of inputs and
the figures per community, all money in integer fen (分).

The inputs are gathered from the log by `dangliang.calculation.fund`; the rules in
`dangliang.policy.insurance` are pure functions of (parameters, inputs, period). Figures are
fen so that every split adds up exactly; they are shown as yuan (`yuan_text`) only at the
edge, in results JSON, statements and explanations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from dangliang.domain.coverage import AGE_BANDS, INSURANCE_TYPES
from dangliang.policy.trace import Step

RULES = ("deqing", "zhijiang")
LEVELS = {"county": "县级", "township": "乡镇级", "village": "村级"}
CELLS = tuple((t, b) for t in INSURANCE_TYPES for b in AGE_BANDS)
"""(insurance type, age band): the cells per-head standards are set for."""


def yuan_text(fen: int) -> str:
    """123456 → "1234.56"; -5 → "-0.05" (exact: fen are whole)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def fen_of(amount: Decimal) -> int:
    """Yuan (any places) → whole fen, ROUND_HALF_UP: the rules' one rounding."""
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Member:
    """An institution of a community, for the split of a surplus down to institutions."""

    code: str
    name: str
    level: str  # "township" (a centre) or "village" (a clinic under a member centre)
    equivalents: Decimal  # its equivalents of the year, from the cube (as at the position)


@dataclass(frozen=True)
class CommunityInputs:
    """One medical community's year as the log stood at a position."""

    code: str
    name: str
    lead_hospital_code: str
    lead_hospital_name: str
    members: tuple[Member, ...] = ()
    score: Decimal | None = None  # the year's assessment, 0–100; None = not scored yet
    enrolled: Mapping[tuple[int, str, str], int] = field(default_factory=dict)
    """(month 1–12, insurance type, age band) → people enrolled with the community that month
    (per-person enrolment expanded month by month, plus monthly counts)."""
    spending: Mapping[tuple[int, bool], int] = field(default_factory=dict)
    """(month 1–12, out of area) → fen the pooled fund paid for the community's insured
    people, by the month the claim was settled (not voided; as last corrected)."""

    def enrolled_in(self, month: int) -> int:
        return sum(n for (m, _, _), n in self.enrolled.items() if m == month)


@dataclass(frozen=True)
class FundInputs:
    """The fund's year: revenue, last year's spending and every community."""

    year: int
    revenue_fen: int | None  # 本年度筹资; None = not reported
    prior_spending_fen: int | None
    """上年度基金支出, the county's pooled-fund spending the year before: from the claims in
    the log, or as the bureau reported it where the log has none; None = unknown."""
    communities: Mapping[str, CommunityInputs]


@dataclass
class CommunityResult:
    """A community's figures for a period (fen), how its surplus reaches institutions, and
    the trace of the rule steps that produced them."""

    code: str
    name: str
    figures: dict[str, int] = field(default_factory=dict)
    allocation: list[dict[str, Any]] = field(default_factory=list)
    """Zhijiang surplus split: [{"code", "name", "level", "amount_fen"}] adding up to the
    surplus; empty otherwise."""
    steps: list[Step] = field(default_factory=list)

    def figures_json(self) -> dict[str, str]:
        return {k: yuan_text(v) for k, v in self.figures.items()}

    def allocation_json(self) -> list[dict[str, Any]]:
        """The surplus split with each amount as yuan text."""
        out = []
        for line in self.allocation:
            shown = {k: v for k, v in line.items() if k != "amount_fen"}
            shown["amount"] = yuan_text(line["amount_fen"])
            out.append(shown)
        return out


@dataclass
class FundResult:
    """Every community's figures and the fund's own (`figures`), for one period."""

    period: str  # "2024", "2024-Q1" or "2024-03"
    rule: str  # one of RULES
    figures: dict[str, int] = field(default_factory=dict)
    communities: dict[str, CommunityResult] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # people, not money (insured persons)

    def as_json(self) -> dict[str, Any]:
        """Money as yuan text, steps as their trace JSON."""
        return {
            "period": self.period,
            "rule": self.rule,
            "figures": {k: yuan_text(v) for k, v in self.figures.items()},
            "counts": dict(self.counts),
            "steps": [s.as_json() for s in self.steps],
            "communities": [
                {
                    "code": c.code,
                    "name": c.name,
                    "figures": c.figures_json(),
                    "allocation": c.allocation_json(),
                    "steps": [s.as_json() for s in c.steps],
                }
                for c in sorted(self.communities.values(), key=lambda c: c.code)
            ],
        }
