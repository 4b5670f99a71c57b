"""The insurance fund's small facts (医保基金输入) as `inp_facts` rows: medical communities,
their assessment scores, the fund's yearly revenue and monthly enrolment counts.

Like every other input fact they are kept as one append-only row per event, so "as the log
stood at position P" is the latest row per key with notification id ≤ P (see `facts`). The
large facts — one enrolment per person, one claim per settlement — have their own tables
(`projections.insurance_cube`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dangliang.domain.claims import EnrolmentCount
from dangliang.domain.community import CommunityYear, FundYear, MedicalCommunity

Fact = tuple[str, str | None, int | None, str, Any]
Owner = Callable[[Any], tuple[str, int | None]]

INSURANCE_EVENTS = (
    MedicalCommunity.Registered,
    MedicalCommunity.Described,
    CommunityYear.Opened,
    CommunityYear.AssessmentScored,
    FundYear.Opened,
    FundYear.Reported,
    EnrolmentCount.Recorded,
    EnrolmentCount.Corrected,
)
OWNED = (
    MedicalCommunity.Registered | CommunityYear.Opened | FundYear.Opened | EnrolmentCount.Recorded
)
"""Events whose aggregate id is remembered with its key, for the events that carry only the id."""


def owner_key(e: Any) -> tuple[str, int | None]:
    """(code, year) an `OWNED` event's aggregate is known by."""
    if isinstance(e, MedicalCommunity.Registered):
        return e.code, None
    if isinstance(e, CommunityYear.Opened):
        return e.code, e.year
    if isinstance(e, FundYear.Opened):
        return "fund", e.year
    return count_key(e.community_code, e.month, e.insurance_type, e.age_band), int(e.month[:4])


def count_key(community: str, month: str, insurance_type: str, band: str) -> str:
    return f"{community}|{month}|{insurance_type}|{band}"


def insurance_fact(e: Any, owner: Owner) -> Fact | None:
    """(kind, institution, year, key, payload) of one insurance event."""
    if isinstance(e, MedicalCommunity.Registered | MedicalCommunity.Described):
        code = e.code if isinstance(e, MedicalCommunity.Registered) else owner(e.originator_id)[0]
        return (
            "community",
            None,
            None,
            code,
            {
                "code": code,
                "name": e.name,
                "lead_hospital_code": e.lead_hospital_code,
                "lead_hospital_name": e.lead_hospital_name,
                "members": list(e.members),
            },
        )
    if isinstance(e, CommunityYear.AssessmentScored):
        code, year = owner(e.originator_id)
        return (
            "community_score",
            None,
            year,
            code,
            {"score": str(e.score), "reference": e.reference, "actor": e.actor},
        )
    if isinstance(e, FundYear.Reported):
        _, year = owner(e.originator_id)
        return (
            "fund_year",
            None,
            year,
            "fund",
            {
                "revenue_fen": e.revenue_fen,
                "prior_spending_fen": e.prior_spending_fen,
                "reference": e.reference,
                "actor": e.actor,
            },
        )
    if isinstance(e, EnrolmentCount.Recorded | EnrolmentCount.Corrected):
        key, year = (
            owner_key(e) if isinstance(e, EnrolmentCount.Recorded) else owner(e.originator_id)
        )
        return (
            "enrolment_count",
            None,
            year,
            key,
            {"count": e.count, "reason": getattr(e, "reason", ""), "actor": e.actor},
        )
    return None
