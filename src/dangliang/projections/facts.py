"""Compensation inputs (补偿计算输入) as they stood at any log position.

Every fact the rule steps read besides equivalents — the adopted policy bundle and its dated
changes, institutions' remote flag and headcount, assessment scores, income, pay levels,
directive tasks, force-majeure declarations — is kept as one append-only row per event in
`inp_facts`, tagged with its notification id. Reading "as the log stood at position P" is then
"the latest row per fact with notification id ≤ P": an audit replays a past computation with
exactly the inputs it had, however many corrections came later.

These facts are few (hundreds a year), so they are decoded in Python, not in SQL.

The readers of these facts — the policy in force, institutions' and staff facts for a year,
payout runs — are in `facts_queries`.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from dangliang.domain.ids import insurance_policy_id
from dangliang.domain.inputs import ForceMajeure, InstitutionYear, StaffYear
from dangliang.domain.institution import Institution
from dangliang.domain.payout import PayoutPeriod, bare_period
from dangliang.domain.policy import CountyPolicy
from dangliang.domain.staff import Staff
from dangliang.ledger.eventlog import EventLog
from dangliang.projections.insurance_facts import (
    INSURANCE_EVENTS,
    OWNED,
    insurance_fact,
    owner_key,
)
from dangliang.projections.tracking import (
    create_missing,
    empty_tables,
    notifications_in,
    topic_of,
)

metadata = MetaData()

facts = Table(
    "inp_facts",
    metadata,
    Column("notification_id", BigInteger, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("institution_code", String(64)),
    Column("year", Integer, index=True),
    Column("key", String(200), nullable=False),
    Column("payload", Text, nullable=False),
)
owners = Table(  # aggregate id → its code (and year), for events that carry only the id
    "inp_owners",
    metadata,
    Column("aggregate_id", String(36), primary_key=True),
    Column("code", String(64), nullable=False),
    Column("year", Integer),
)

_EVENTS = (
    CountyPolicy.Adopted,
    CountyPolicy.ParameterChanged,
    Institution.Registered,
    Institution.Described,
    Institution.HeadcountSet,
    InstitutionYear.Opened,
    InstitutionYear.AssessmentScored,
    InstitutionYear.IncomeReported,
    InstitutionYear.PayLevelReported,
    InstitutionYear.DirectiveTaskAssigned,
    InstitutionYear.DirectiveTaskCompleted,
    ForceMajeure.Declared,
    ForceMajeure.Amended,
    InstitutionYear.PoolApproved,
    InstitutionYear.SurplusReported,
    InstitutionYear.DirectorNamed,
    Staff.Registered,
    Staff.Renamed,
    Staff.Posted,
    StaffYear.Opened,
    StaffYear.Assessed,
    StaffYear.OutsideItemRecorded,
    PayoutPeriod.RunComputed,
    PayoutPeriod.RunApproved,
    PayoutPeriod.RunRejected,
    PayoutPeriod.RunPaid,
    *INSURANCE_EVENTS,
)
INPUT_KINDS = (
    "institution",
    "headcount",
    "score",
    "income",
    "pay_level",
    "task",
    "task_completion",
    "force_majeure",
)


STAFF_KINDS = (
    "staff",
    "posting",
    "staff_coefficient",
    "outside_item",
    "pool",
    "surplus",
    "director",
)


class InputsProjection:
    """Append-only facts; small, so a rebuild simply deletes and replays them."""

    name = "inputs"
    version = "3"  # bump when a new kind of fact is recorded: old databases are replayed once
    batch_size = 1_000_000
    topics: tuple[str, ...] = tuple(topic_of(c) for c in _EVENTS)

    def create(self, engine: Engine) -> None:
        create_missing(engine, metadata)

    def drop(self, engine: Engine) -> None:
        empty_tables(engine, metadata, self.name)

    def process(self, conn: Connection, log: EventLog, start: int, stop: int) -> None:
        rows: list[dict[str, Any]] = []
        owned = Owners(conn)
        for n in notifications_in(log, start, stop, self.topics):
            e = log.mapper.to_domain_event(n)
            fact = _fact(owned, e)
            if fact is not None:
                kind, institution, year, key, payload = fact
                rows.append(
                    {
                        "notification_id": n.id,
                        "kind": kind,
                        "institution_code": institution,
                        "year": year,
                        "key": key,
                        "payload": json.dumps(payload, ensure_ascii=False, default=str),
                    }
                )
        owned.write()
        if rows:
            conn.execute(facts.insert(), rows)


class Owners:
    """Who owns each aggregate, for the events that carry only its id: the owners met in this
    batch are kept here and written together at its end (`write`: one statement, not one per
    registration); the others are read from `inp_owners` (and kept)."""

    def __init__(self, conn: Connection):
        self._conn = conn
        self._known: dict[str, tuple[str, int | None]] = {}
        self._new: list[dict[str, Any]] = []

    def add(self, aggregate_id: Any, code: str, year: int | None) -> None:
        self._known[str(aggregate_id)] = (code, year)
        self._new.append({"aggregate_id": str(aggregate_id), "code": code, "year": year})

    def __call__(self, aggregate_id: Any) -> tuple[str, int | None]:
        key = str(aggregate_id)
        if key not in self._known:
            row = self._conn.execute(
                select(owners.c.code, owners.c.year).where(owners.c.aggregate_id == key)
            ).one()
            self._known[key] = (row[0], row[1])
        return self._known[key]

    def write(self) -> None:
        if self._new:
            self._conn.execute(owners.insert(), self._new)
            self._new = []


def _fact(owner: Owners, e: Any) -> tuple[str, str | None, int | None, str, Any] | None:
    """(kind, institution, year, key, payload) of one event; owners are remembered first."""
    if isinstance(e, INSURANCE_EVENTS):
        if isinstance(e, OWNED):
            owner.add(e.originator_id, *owner_key(e))
        return insurance_fact(e, owner)
    if isinstance(
        e,
        Institution.Registered
        | InstitutionYear.Opened
        | ForceMajeure.Declared
        | Staff.Registered
        | StaffYear.Opened,
    ):
        code = (
            e.institution_code
            if isinstance(e, InstitutionYear.Opened)
            else e.staff_id
            if isinstance(e, Staff.Registered | StaffYear.Opened)
            else e.code
        )
        year = e.year if isinstance(e, InstitutionYear.Opened | StaffYear.Opened) else None
        owner.add(e.originator_id, code, year)
    scheme = "insurance_" if e.originator_id == insurance_policy_id() else ""
    if isinstance(e, CountyPolicy.Adopted):
        return (
            f"{scheme}policy",
            None,
            None,
            "",
            {
                "bundle_name": e.bundle_name,
                "canonical_json": e.canonical_json,
                "digest": e.digest,
                "reference": e.reference,
                "actor": e.actor,
            },
        )
    if isinstance(e, CountyPolicy.ParameterChanged):
        return (
            f"{scheme}parameter_change",
            None,
            None,
            e.path,
            {
                "path": e.path,
                "start": e.start.isoformat(),
                "value_json": e.value_json,
                "reason": e.reason,
                "approver": e.approver,
                "actor": e.actor,
            },
        )
    if isinstance(e, ForceMajeure.Declared | ForceMajeure.Amended):
        code = owner(e.originator_id)[0]
        return (
            "force_majeure",
            None,
            None,
            code,
            {
                "code": code,
                "first_month": e.first_month.isoformat(),
                "last_month": e.last_month.isoformat(),
                "institutions": list(e.institutions),
                "reason": e.reason,
                "reference": e.reference,
            },
        )
    if isinstance(e, InstitutionYear.Opened | StaffYear.Opened):
        return None
    staff_fact = _staff_fact(owner, e)
    if staff_fact is not None:
        return staff_fact
    if isinstance(e, PayoutPeriod.RunComputed):
        return (
            "payout_run",
            None,
            int(bare_period(e.run_id)[:4]),
            e.run_id,
            {
                "run_id": e.run_id,
                "period": e.run_id.partition("#")[0],
                "position": e.position,
                "position_recorded_at": _iso(e.position_recorded_at),
                "chain_head": e.chain_head,
                "policy_bundle": e.policy_bundle,
                "parameters_digest": e.parameters_digest,
                "results_json": e.results_json,
                "results_digest": e.results_digest,
                "supersedes": e.supersedes,
                "software": e.software,
                "rule_set": e.rule_set,
                "computed_by": e.actor,
                "computed_at": _iso(e.timestamp),
            },
        )
    if isinstance(e, PayoutPeriod.RunApproved | PayoutPeriod.RunRejected | PayoutPeriod.RunPaid):
        state = {
            PayoutPeriod.RunApproved: "approved",
            PayoutPeriod.RunRejected: "rejected",
            PayoutPeriod.RunPaid: "paid",
        }[type(e)]
        note = e.reason if isinstance(e, PayoutPeriod.RunRejected) else e.reference
        return (
            "payout_state",
            None,
            int(bare_period(e.run_id)[:4]),
            e.run_id,
            {
                "state": state,
                "note": note,
                "actor": e.actor,
                "at": _iso(e.timestamp),
            },
        )
    institution, year = owner(e.originator_id)
    if isinstance(e, Institution.Registered | Institution.Described):
        return (
            "institution",
            institution,
            None,
            "",
            {
                "name": e.name,
                "kind": e.kind,
                "parent_code": e.parent_code,
                "remote": e.remote,
            },
        )
    if isinstance(e, Institution.HeadcountSet):
        return "headcount", institution, e.year, "", {"headcount": e.headcount}
    if isinstance(e, InstitutionYear.AssessmentScored):
        return "score", institution, year, "", {"score": str(e.score), "reference": e.reference}
    if isinstance(e, InstitutionYear.IncomeReported):
        return "income", institution, year, f"{e.month:%m}", {"amount": str(e.amount)}
    if isinstance(e, InstitutionYear.PayLevelReported):
        return "pay_level", institution, year, "", {"per_head": str(e.per_head)}
    if isinstance(e, InstitutionYear.DirectiveTaskAssigned):
        return (
            "task",
            institution,
            year,
            e.task_code,
            {
                "name": e.name,
                "amount": str(e.amount),
                "reference": e.reference,
            },
        )
    if isinstance(e, InstitutionYear.PoolApproved):
        return (
            "pool",
            institution,
            year,
            "",
            {
                "pool": str(e.pool),
                "reward_share": str(e.reward_share),
                "reference": e.reference,
            },
        )
    if isinstance(e, InstitutionYear.SurplusReported):
        return "surplus", institution, year, "", {"surplus": str(e.surplus), "share": str(e.share)}
    if isinstance(e, InstitutionYear.DirectorNamed):
        return "director", institution, year, "", {"staff_id": e.staff_id}
    if isinstance(e, InstitutionYear.DirectiveTaskCompleted):
        return "task_completion", institution, year, e.task_code, {"completion": str(e.completion)}
    return None


def _staff_fact(owner: Owners, e: Any) -> tuple[str, str | None, int | None, str, Any] | None:
    """Staff names, postings and per-year performance-pay inputs (keyed by staff id)."""
    if isinstance(e, Staff.Registered):
        return "staff", None, None, e.staff_id, {"name": e.name}
    if isinstance(e, Staff.Renamed):
        return "staff", None, None, owner(e.originator_id)[0], {"name": e.name}
    if isinstance(e, Staff.Posted):
        staff_id = owner(e.originator_id)[0]
        return (
            "posting",
            e.institution_code,
            None,
            f"{staff_id}|{e.from_date.isoformat()}",
            {
                "staff_id": staff_id,
                "institution_code": e.institution_code,
                "post": e.post,
                "establishment": e.establishment,
                "from_date": e.from_date.isoformat(),
                "to_date": _iso(e.to_date),
            },
        )
    if isinstance(e, StaffYear.Assessed):
        staff_id, year = owner(e.originator_id)
        return (
            "staff_coefficient",
            None,
            year,
            staff_id,
            {
                "coefficient": str(e.coefficient),
                "reference": e.reference,
            },
        )
    if isinstance(e, StaffYear.OutsideItemRecorded):
        staff_id, year = owner(e.originator_id)
        return (
            "outside_item",
            None,
            year,
            f"{staff_id}|{e.kind}",
            {
                "staff_id": staff_id,
                "kind": e.kind,
                "amount": str(e.amount),
                "reference": e.reference,
            },
        )
    return None


def _iso(moment: date | None) -> str | None:
    return moment.isoformat() if moment is not None else None
