"""Medical communities (医共体) and the fund's years, as facts: who leads and belongs to each
community, its yearly assessment score (考核), and the fund's yearly revenue (筹资).

Budgets, surpluses and shares are computed from these facts by the rules in
`dangliang.policy.insurance` (docs/insurance.md). Money is integer fen (分) in every event.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from dangliang.domain import ids
from dangliang.domain.coverage import require_fen
from dangliang.domain.errors import InvalidValue
from dangliang.domain.values import require_text


class MedicalCommunity(Aggregate):
    """医共体: a county group led by a county hospital (牵头医院), with member centres (their
    village clinics follow them). The lead hospital is named here, not registered as an
    institution: the compensation engine pays primary care only."""

    class Registered(Aggregate.Created):
        """医共体已登记."""

        code: str
        name: str
        lead_hospital_code: str
        lead_hospital_name: str
        members: list[str]
        actor: str

    class Described(Aggregate.Event):
        """医共体信息已变更: the new name, lead hospital and members."""

        name: str
        lead_hospital_code: str
        lead_hospital_name: str
        members: list[str]
        actor: str

    @staticmethod
    def create_id(code: str, **_: Any) -> UUID:
        return ids.community_id(code)

    @event(Registered)
    def __init__(
        self,
        code: str,
        name: str,
        lead_hospital_code: str,
        lead_hospital_name: str,
        members: list[str],
        actor: str,
    ) -> None:
        self.code = code
        self.details = (name, lead_hospital_code, lead_hospital_name, list(members))

    @classmethod
    def register(
        cls,
        *,
        code: str,
        name: str,
        lead_hospital_code: str,
        lead_hospital_name: str,
        members: list[str],
        actor: str,
    ) -> MedicalCommunity:
        return cls(
            code=code,
            name=require_text(name, "医共体名称", "a community name"),
            lead_hospital_code=lead_hospital_code,
            lead_hospital_name=lead_hospital_name,
            members=sorted(set(members)),
            actor=actor,
        )

    def describe(
        self,
        *,
        name: str,
        lead_hospital_code: str,
        lead_hospital_name: str,
        members: list[str],
        actor: str,
    ) -> bool:
        """Record changed details; False (nothing recorded) when nothing changed."""
        details = (name, lead_hospital_code, lead_hospital_name, sorted(set(members)))
        if details == self.details:
            return False
        self._described(
            name=name,
            lead_hospital_code=lead_hospital_code,
            lead_hospital_name=lead_hospital_name,
            members=details[3],
            actor=actor,
        )
        return True

    @event(Described)
    def _described(
        self,
        name: str,
        lead_hospital_code: str,
        lead_hospital_name: str,
        members: list[str],
        actor: str,
    ) -> None:
        self.details = (name, lead_hospital_code, lead_hospital_name, list(members))


class CommunityYear(Aggregate):
    """A community's year: its assessment score (医共体年度考核得分, 0–100)."""

    class Opened(Aggregate.Created):
        code: str
        year: int
        actor: str

    class AssessmentScored(Aggregate.Event):
        """医共体年度考核得分已录入 (a later score supersedes)."""

        score: Decimal
        reference: str
        actor: str

    @staticmethod
    def create_id(code: str, year: int, **_: Any) -> UUID:
        return ids.community_year_id(code, year)

    @event(Opened)
    def __init__(self, code: str, year: int, actor: str) -> None:
        self.code = code
        self.year = year
        self.score: Decimal | None = None

    @classmethod
    def open(cls, *, code: str, year: int, actor: str) -> CommunityYear:
        return cls(code=code, year=year, actor=actor)

    def score_assessment(self, *, score: Decimal, reference: str, actor: str) -> bool:
        if not Decimal(0) <= score <= Decimal(100):
            raise InvalidValue(f"考核得分应在 0–100：{score}", f"score must be 0–100: {score}")
        if score == self.score:
            return False
        self._scored(score=score, reference=reference, actor=actor)
        return True

    @event(AssessmentScored)
    def _scored(self, score: Decimal, reference: str, actor: str) -> None:
        self.score = score


class FundYear(Aggregate):
    """The fund's year: revenue (本年度筹资) and, where the log holds no claims of the year
    before, that year's spending as the bureau reports it (上年度基金支出)."""

    class Opened(Aggregate.Created):
        year: int
        actor: str

    class Reported(Aggregate.Event):
        """医保基金年度数据已录入 (a later report supersedes)."""

        revenue_fen: int
        prior_spending_fen: int | None
        reference: str
        actor: str

    @staticmethod
    def create_id(year: int, **_: Any) -> UUID:
        return ids.fund_year_id(year)

    @event(Opened)
    def __init__(self, year: int, actor: str) -> None:
        self.year = year
        self.figures: tuple[int, int | None] | None = None

    @classmethod
    def open(cls, *, year: int, actor: str) -> FundYear:
        return cls(year=year, actor=actor)

    def report(
        self, *, revenue_fen: int, prior_spending_fen: int | None, reference: str, actor: str
    ) -> bool:
        require_fen(revenue_fen, "筹资额", "revenue")
        if prior_spending_fen is not None:
            require_fen(prior_spending_fen, "上年度基金支出", "prior spending")
        if (revenue_fen, prior_spending_fen) == self.figures:
            return False
        self._reported(
            revenue_fen=revenue_fen,
            prior_spending_fen=prior_spending_fen,
            reference=require_text(reference, "数据来源（文号）", "a reference"),
            actor=actor,
        )
        return True

    @event(Reported)
    def _reported(
        self, revenue_fen: int, prior_spending_fen: int | None, reference: str, actor: str
    ) -> None:
        self.figures = (revenue_fen, prior_spending_fen)
