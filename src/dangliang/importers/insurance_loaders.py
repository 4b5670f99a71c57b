"""Load the insurance fund's small facts (医保基金): medical communities (医共体), monthly
enrolment counts (参保人数), the fund's years (医保基金年度) and the communities' assessment
scores (医共体考核).

The same rules as the reference loaders (`reference.py`), whose reading and session this
module reuses: each file is validated whole and every problem is collected with its file,
row and column; each row is then applied to its aggregate in memory, where the domain's own
rules may still refuse it; only when nothing was refused are all the new events saved in one
transaction. Loading the same file again records nothing. The large facts (claims, enrolment
per person) go through the bulk import (`bulk_insurance`), their corrections through
`insurance_revisions`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from dangliang.domain import ids
from dangliang.domain.claims import EnrolmentCount
from dangliang.domain.community import CommunityYear, FundYear, MedicalCommunity
from dangliang.domain.errors import DomainError
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.importers.bulk_import import ImportResult, file_import_ref
from dangliang.importers.bulk_insurance import unknown_community
from dangliang.importers.fields import Code, CodeList, Score, Text, Year
from dangliang.importers.formats import (
    COMMUNITIES,
    COMMUNITY_SCORES,
    ENROLMENT_COUNTS,
    FUND_YEARS,
)
from dangliang.importers.fund_fields import AgeBand, Fen, InsuranceType, MonthText, People
from dangliang.importers.reference import Session, read
from dangliang.ledger.eventlog import EventLog

Institutions = Mapping[str, tuple[str, str | None]]
"""Registered institutions: code → (kind, parent code), as `Core.institutions()` gives them."""
Communities = Mapping[str, list[str]]
"""Registered medical communities: code → member institution codes, as the log stands."""

R = TypeVar("R")


@dataclass
class InsuranceResult(ImportResult):
    """What an insurance import did; `counts` says what was recorded (e.g. corrected, voided)."""

    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        text = super().summary()
        if self.counts:
            text += " (" + ", ".join(f"{k} {v}" for k, v in self.counts.items()) + ")"
        return text


class RowRefused(DomainError):
    """A row the log's state refuses, with the column to blame."""

    def __init__(self, column: str, message_zh: str, message_en: str):
        super().__init__(message_zh, message_en)
        self.column = column


class CommunityRow(TypedDict):
    community_code: Code
    name: Text
    lead_hospital_code: Code
    lead_hospital_name: Text
    members: CodeList


class CountRow(TypedDict):
    community_code: Code
    month: MonthText
    insurance_type: InsuranceType
    age_band: AgeBand
    count: People
    reason: Text | None


class FundYearRow(TypedDict):
    year: Year
    revenue: Fen
    prior_spending: Fen | None
    reference: Text


class CommunityScoreRow(TypedDict):
    community_code: Code
    year: Year
    score: Score
    reference: Text


def apply_rows(
    log: EventLog,
    path: Path,
    name: str,
    rows: list[tuple[int, R]],
    problems: list[Problem],
    apply_row: Callable[[Session, R], bool],
    column: str,
) -> InsuranceResult:
    """Apply every row not already refused; save all of it at once, or nothing."""
    session = Session(log)
    changed = 0
    already = {p.row for p in problems}
    for row_number, r in rows:
        if row_number in already:
            continue  # reported once is enough
        try:
            changed += apply_row(session, r)
        except RowRefused as e:
            problems.append(Problem(name, row_number, e.column, e.message_zh, e.message_en))
        except DomainError as e:
            problems.append(Problem(name, row_number, column, e.message_zh, e.message_en))
    if problems:
        raise ProblemsFound(problems)
    events = session.save()
    return InsuranceResult(
        file=name,
        import_ref=file_import_ref(path),
        rows=len(rows),
        inserted=changed,
        already_present=len(rows) - changed,
        counts={"events": events},
    )


def unknown_communities(
    name: str,
    rows: list[tuple[int, CountRow]] | list[tuple[int, CommunityScoreRow]],
    known: Communities,
) -> list[Problem]:
    return [
        unknown_community(name, n, r["community_code"])
        for n, r in rows
        if r["community_code"] not in known
    ]


# ---- communities ------------------------------------------------------------------------


def load_communities(
    log: EventLog, institutions: Institutions, known: Communities, path: Path, actor: str
) -> InsuranceResult:
    """医共体: each community, its lead hospital and its member centres. A member is a
    registered township or community health centre (its village clinics follow it) and
    belongs to one community only."""
    name, rows, problems = read(path, COMMUNITIES, TypeAdapter(list[CommunityRow]))
    in_file = {r["community_code"] for _, r in rows}
    # Whose member each centre is: as the log stands, except communities this file describes.
    owner = {m: code for code, members in known.items() if code not in in_file for m in members}
    for row_number, r in rows:
        code = r["community_code"]
        for member in r["members"]:
            found = institutions.get(member)
            if found is None:
                problems.append(
                    Problem.unknown(
                        name, row_number, "members", "机构编码", "institution code", member
                    )
                )
            elif found[0] == "village_clinic":
                centre = found[1] or "?"
                problems.append(
                    Problem(
                        name,
                        row_number,
                        "members",
                        f"{member} 是村卫生室：村卫生室随所属卫生院（{centre}）加入，请列出卫生院",
                        f"{member} is a village clinic: clinics follow their centre "
                        f"({centre}); list the centre instead",
                    )
                )
            elif owner.setdefault(member, code) != code:
                problems.append(
                    Problem(
                        name,
                        row_number,
                        "members",
                        f"机构 {member} 已属于医共体 {owner[member]}",
                        f"institution {member} already belongs to community {owner[member]}",
                    )
                )

    def apply_row(session: Session, r: CommunityRow) -> bool:
        details = dict(
            name=r["name"],
            lead_hospital_code=r["lead_hospital_code"],
            lead_hospital_name=r["lead_hospital_name"],
            members=list(r["members"]),
            actor=actor,
        )
        existing: MedicalCommunity | None = session.get(ids.community_id(r["community_code"]))
        if existing is None:
            session.add(MedicalCommunity.register(code=r["community_code"], **details))  # type: ignore[arg-type]
            return True
        return existing.describe(**details)  # type: ignore[arg-type]

    return apply_rows(log, path, name, rows, problems, apply_row, "name")


# ---- monthly enrolment counts -----------------------------------------------------------


def load_enrolment_counts(
    log: EventLog, known: Communities, path: Path, actor: str
) -> InsuranceResult:
    """参保人数: people enrolled with a community in a month, by insurance type and age band.
    A count already in the log with another number is a correction: it needs a reason."""
    name, rows, problems = read(path, ENROLMENT_COUNTS, TypeAdapter(list[CountRow]))
    problems.extend(unknown_communities(name, rows, known))
    import_ref = file_import_ref(path)

    def apply_row(session: Session, r: CountRow) -> bool:
        key = (r["community_code"], r["month"], r["insurance_type"], r["age_band"])
        existing: EnrolmentCount | None = session.get(ids.enrolment_count_id(*key))
        if existing is None:
            session.add(
                EnrolmentCount.record(
                    community_code=key[0],
                    month=key[1],
                    insurance_type=key[2],
                    age_band=key[3],
                    count=r["count"],
                    actor=actor,
                    import_ref=import_ref,
                )
            )
            return True
        if existing.count == r["count"]:
            return False
        if r["reason"] is None:
            raise RowRefused(
                "reason",
                f"该月人数已录入为 {existing.count}；改为 {r['count']} 须填写更正原因",
                f"this count was recorded as {existing.count}; changing it to {r['count']} "
                "needs a reason",
            )
        return existing.correct(
            count=r["count"], reason=r["reason"], actor=actor, import_ref=import_ref
        )

    return apply_rows(log, path, name, rows, problems, apply_row, "count")


# ---- the fund's years -------------------------------------------------------------------


def load_fund_years(log: EventLog, path: Path, actor: str) -> InsuranceResult:
    """医保基金年度: the year's revenue and, optionally, the year before's spending. A later
    report supersedes; a blank prior spending keeps the one reported earlier."""
    name, rows, problems = read(path, FUND_YEARS, TypeAdapter(list[FundYearRow]))

    def apply_row(session: Session, r: FundYearRow) -> bool:
        year: FundYear | None = session.get(ids.fund_year_id(r["year"]))
        opened = year is None
        if year is None:
            year = FundYear.open(year=r["year"], actor=actor)
            session.add(year)
        prior = r["prior_spending"]
        if prior is None and year.figures is not None:
            prior = year.figures[1]
        reported = year.report(
            revenue_fen=r["revenue"],
            prior_spending_fen=prior,
            reference=r["reference"],
            actor=actor,
        )
        return opened or reported

    return apply_rows(log, path, name, rows, problems, apply_row, "revenue")


# ---- the communities' assessment --------------------------------------------------------


def load_community_scores(
    log: EventLog, known: Communities, path: Path, actor: str
) -> InsuranceResult:
    """医共体考核: each community's assessment score (0–100) for a year; a later one supersedes."""
    name, rows, problems = read(path, COMMUNITY_SCORES, TypeAdapter(list[CommunityScoreRow]))
    problems.extend(unknown_communities(name, rows, known))

    def apply_row(session: Session, r: CommunityScoreRow) -> bool:
        code, number = r["community_code"], r["year"]
        year: CommunityYear | None = session.get(ids.community_year_id(code, number))
        opened = year is None
        if year is None:
            year = CommunityYear.open(code=code, year=number, actor=actor)
            session.add(year)
        scored = year.score_assessment(score=r["score"], reference=r["reference"], actor=actor)
        return opened or scored

    return apply_rows(log, path, name, rows, problems, apply_row, "score")
