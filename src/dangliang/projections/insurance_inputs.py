"""Reading the insurance fund's small facts as the log stood at a position: communities,
their scores, the fund's year and monthly enrolment counts (rows written by
`insurance_facts` into `inp_facts`; the latest row per key with notification id ≤ the
position wins)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, or_, select

from dangliang.projections.facts import facts


@dataclass(frozen=True)
class CommunityFacts:
    code: str
    name: str
    lead_hospital_code: str
    lead_hospital_name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class FundYearFacts:
    revenue_fen: int | None = None
    prior_spending_fen: int | None = None
    reference: str = ""


def _latest(
    conn: Connection, kinds: tuple[str, ...], position: int | None, year: int | None = None
) -> dict[tuple[str, str], tuple[int, Any]]:
    query = select(facts.c.notification_id, facts.c.kind, facts.c.key, facts.c.payload).where(
        facts.c.kind.in_(kinds)
    )
    if year is not None:
        query = query.where(or_(facts.c.year == year, facts.c.year.is_(None)))
    if position is not None:
        query = query.where(facts.c.notification_id <= position)
    latest: dict[tuple[str, str], tuple[int, Any]] = {}
    for nid, kind, key, payload in conn.execute(query.order_by(facts.c.notification_id)):
        latest[(kind, key)] = (nid, json.loads(payload))
    return latest


def communities_at(conn: Connection, position: int | None = None) -> dict[str, CommunityFacts]:
    """Every medical community registered by `position` (now when None), by code."""
    out = {}
    for (_, code), (_, body) in sorted(_latest(conn, ("community",), position).items()):
        out[code] = CommunityFacts(
            code,
            body["name"],
            body["lead_hospital_code"],
            body["lead_hospital_name"],
            tuple(body["members"]),
        )
    return out


def scores_at(conn: Connection, year: int, position: int | None = None) -> dict[str, Decimal]:
    """Each community's assessment score of `year` (医共体年度考核得分)."""
    found = _latest(conn, ("community_score",), position, year)
    return {code: Decimal(body["score"]) for (_, code), (_, body) in found.items()}


def fund_year_at(conn: Connection, year: int, position: int | None = None) -> FundYearFacts:
    found = _latest(conn, ("fund_year",), position, year)
    if not found:
        return FundYearFacts()
    _, body = found[("fund_year", "fund")]
    return FundYearFacts(body["revenue_fen"], body["prior_spending_fen"], body["reference"])


def enrolment_counts_at(
    conn: Connection, year: int, position: int | None = None
) -> dict[str, dict[tuple[int, str, str], int]]:
    """Monthly counts (参保人数) for `year`: community → {(month, type, band): people}."""
    out: dict[str, dict[tuple[int, str, str], int]] = defaultdict(dict)
    for (_, key), (_, body) in _latest(conn, ("enrolment_count",), position, year).items():
        community, month, insurance_type, band = key.split("|")
        if int(month[:4]) == year and body["count"]:
            out[community][(int(month[5:7]), insurance_type, band)] = int(body["count"])
    return dict(out)


def insurance_fact_changes(
    conn: Connection, year: int, after: int, upto: int
) -> list[tuple[int, str, str, dict[str, Any]]]:
    """(notification id, kind, key, payload) of the small insurance facts of `year` (or of
    no year: communities) recorded after `after` up to `upto`: causes of a difference."""
    query = (
        select(facts.c.notification_id, facts.c.kind, facts.c.key, facts.c.payload)
        .where(
            facts.c.kind.in_(("community", "community_score", "fund_year", "enrolment_count")),
            or_(facts.c.year == year, facts.c.year.is_(None)),
            facts.c.notification_id > after,
            facts.c.notification_id <= upto,
        )
        .order_by(facts.c.notification_id)
    )
    return [(nid, kind, key, json.loads(p)) for nid, kind, key, p in conn.execute(query)]
