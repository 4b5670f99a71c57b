"""Compensation inputs (补偿计算输入) as they stood at any log position.

Every fact the rule steps read besides equivalents — the adopted policy bundle and its dated
changes, institutions' remote flag and headcount, assessment scores, income, pay levels,
directive tasks, force-majeure declarations — is kept as one append-only row per event in
`inp_facts`, tagged with its notification id. Reading "as the log stood at position P" is then
"the latest row per fact with notification id ≤ P": an audit replays a past computation with
exactly the inputs it had, however many corrections came later.

These facts are few (hundreds a year), so they are decoded in Python, not in SQL.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
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
    or_,
    select,
)

from dangliang.domain.errors import DomainError
from dangliang.domain.inputs import ForceMajeure, InstitutionYear, StaffYear
from dangliang.domain.institution import Institution
from dangliang.domain.payout import PERFORMANCE, PayoutPeriod
from dangliang.domain.policy import CountyPolicy
from dangliang.domain.staff import Staff
from dangliang.ledger.eventlog import EventLog
from dangliang.policy.parameters import (
    ParameterTree,
    tree_from_canonical_json,
    value_from_canonical,
)
from dangliang.policy.subsidy import DirectiveTask
from dangliang.projections.tracking import empty_tables, notifications_in, topic_of

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


class NoPolicyAdopted(DomainError):
    """No policy bundle in the log (at that position): nothing can be computed."""


class InputsProjection:
    """Append-only facts; small, so a rebuild simply deletes and replays them."""

    name = "inputs"
    version = "2"  # bump when a new kind of fact is recorded: old databases are replayed once
    batch_size = 1_000_000
    topics: tuple[str, ...] = tuple(topic_of(c) for c in _EVENTS)

    def create(self, engine: Engine) -> None:
        metadata.create_all(engine)

    def drop(self, engine: Engine) -> None:
        empty_tables(engine, metadata, self.name)

    def process(self, conn: Connection, log: EventLog, start: int, stop: int) -> None:
        rows: list[dict[str, Any]] = []
        for n in notifications_in(log, start, stop, self.topics):
            e = log.mapper.to_domain_event(n)
            fact = _fact(conn, e)
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
        if rows:
            conn.execute(facts.insert(), rows)


def _fact(conn: Connection, e: Any) -> tuple[str, str | None, int | None, str, Any] | None:
    """(kind, institution, year, key, payload) of one event; owners are remembered first."""
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
        conn.execute(
            owners.insert().values(aggregate_id=str(e.originator_id), code=code, year=year)
        )
    if isinstance(e, CountyPolicy.Adopted):
        return (
            "policy",
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
            "parameter_change",
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
        code = _owner(conn, e.originator_id)[0]
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
    staff_fact = _staff_fact(conn, e)
    if staff_fact is not None:
        return staff_fact
    if isinstance(e, PayoutPeriod.RunComputed):
        return (
            "payout_run",
            None,
            int(e.run_id.removeprefix(PERFORMANCE)[:4]),
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
            int(e.run_id.removeprefix(PERFORMANCE)[:4]),
            e.run_id,
            {
                "state": state,
                "note": note,
                "actor": e.actor,
                "at": _iso(e.timestamp),
            },
        )
    institution, year = _owner(conn, e.originator_id)
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


def _staff_fact(conn: Connection, e: Any) -> tuple[str, str | None, int | None, str, Any] | None:
    """Staff names, postings and per-year performance-pay inputs (keyed by staff id)."""
    if isinstance(e, Staff.Registered):
        return "staff", None, None, e.staff_id, {"name": e.name}
    if isinstance(e, Staff.Renamed):
        return "staff", None, None, _owner(conn, e.originator_id)[0], {"name": e.name}
    if isinstance(e, Staff.Posted):
        staff_id = _owner(conn, e.originator_id)[0]
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
        staff_id, year = _owner(conn, e.originator_id)
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
        staff_id, year = _owner(conn, e.originator_id)
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


def _owner(conn: Connection, aggregate_id: Any) -> tuple[str, int | None]:
    row = conn.execute(
        select(owners.c.code, owners.c.year).where(owners.c.aggregate_id == str(aggregate_id))
    ).one()
    return row[0], row[1]


# ---- reading ----------------------------------------------------------------------------------


@dataclass
class PolicyInForce:
    """The adopted bundle with every change recorded since, as at a log position."""

    tree: ParameterTree
    bundle_name: str
    digest: str  # of the adopted bundle
    reference: str
    adopted_at: int  # notification id
    changes: list[dict[str, Any]] = field(default_factory=list)


def policy_at(conn: Connection, position: int | None = None) -> PolicyInForce:
    """The policy as the log stood at `position` (now when None)."""
    query = select(facts.c.notification_id, facts.c.kind, facts.c.payload).where(
        facts.c.kind.in_(("policy", "parameter_change"))
    )
    if position is not None:
        query = query.where(facts.c.notification_id <= position)
    found: PolicyInForce | None = None
    for nid, kind, payload in conn.execute(query.order_by(facts.c.notification_id)):
        body = json.loads(payload)
        if kind == "policy":
            tree = tree_from_canonical_json(body["canonical_json"], body["bundle_name"])
            found = PolicyInForce(tree, body["bundle_name"], body["digest"], body["reference"], nid)
        elif found is not None:
            unit = found.tree.parameter(body["path"]).unit
            value = value_from_canonical(json.loads(body["value_json"]), unit)
            reference = f"{body['reason']}（批准：{body['approver']}）"
            found.tree = found.tree.with_value(
                body["path"], date.fromisoformat(body["start"]), value, reference
            )
            found.changes.append({**body, "notification_id": nid})
    if found is None:
        raise NoPolicyAdopted(
            "尚未采用政策参数包：请先运行 dangliang policy load FILE",
            "no policy bundle adopted: run `dangliang policy load FILE` first",
        )
    return found


@dataclass
class InstitutionFacts:
    code: str
    name: str = ""
    kind: str = ""
    parent_code: str | None = None
    remote: bool = False
    headcount: int = 0
    score: Decimal | None = None
    score_reference: str = ""
    income: dict[int, Decimal] = field(default_factory=dict)
    pay_level: Decimal | None = None
    tasks: dict[str, DirectiveTask] = field(default_factory=dict)
    force_majeure: set[int] = field(default_factory=set)


def facts_for_year(
    conn: Connection, year: int, position: int | None = None
) -> dict[str, InstitutionFacts]:
    """Every institution's facts for `year`, as the log stood at `position`."""
    query = select(facts.c.kind, facts.c.institution_code, facts.c.key, facts.c.payload).where(
        or_(facts.c.year == year, facts.c.year.is_(None)), facts.c.kind.in_(INPUT_KINDS)
    )
    if position is not None:
        query = query.where(facts.c.notification_id <= position)
    latest: dict[tuple[str, str | None, str], Any] = {}
    for kind, institution, key, payload in conn.execute(query.order_by(facts.c.notification_id)):
        latest[(kind, institution, key)] = json.loads(payload)
    out: dict[str, InstitutionFacts] = {}
    for (kind, institution, _), body in latest.items():
        if kind == "institution" and institution is not None:
            out[institution] = InstitutionFacts(
                institution, body["name"], body["kind"], body["parent_code"], body["remote"]
            )
    completion: dict[tuple[str, str], Decimal] = {}
    for (kind, institution, key), body in latest.items():
        inst = out.get(institution or "")
        if kind == "headcount" and inst:
            inst.headcount = int(body["headcount"])
        elif kind == "score" and inst:
            inst.score, inst.score_reference = Decimal(body["score"]), body["reference"]
        elif kind == "income" and inst:
            inst.income[int(key)] = Decimal(body["amount"])
        elif kind == "pay_level" and inst:
            inst.pay_level = Decimal(body["per_head"])
        elif kind == "task" and inst:
            inst.tasks[key] = DirectiveTask(
                key, body["name"], Decimal(body["amount"]), Decimal(0), body["reference"]
            )
        elif kind == "task_completion" and institution:
            completion[(institution, key)] = Decimal(body["completion"])
        elif kind == "force_majeure":
            for code, months in _declared(body, year, out):
                out[code].force_majeure.update(months)
    for (institution, key), share in completion.items():
        task = out[institution].tasks[key]
        out[institution].tasks[key] = DirectiveTask(
            task.code, task.name, task.amount, share, task.reference
        )
    return out


def _declared(
    body: dict[str, Any], year: int, institutions: dict[str, InstitutionFacts]
) -> Iterable[tuple[str, list[int]]]:
    first, last = date.fromisoformat(body["first_month"]), date.fromisoformat(body["last_month"])
    months = [m for m in range(1, 13) if first <= date(year, m, 1) <= last]
    if not months:
        return []
    codes = body["institutions"] or list(institutions)
    return [(code, months) for code in codes if code in institutions]


def force_majeure_declarations(
    conn: Connection, position: int | None = None
) -> dict[str, dict[str, Any]]:
    """Every declaration (latest form) by code, for showing where a top-up comes from."""
    query = select(facts.c.key, facts.c.payload).where(facts.c.kind == "force_majeure")
    if position is not None:
        query = query.where(facts.c.notification_id <= position)
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for key, payload in conn.execute(query.order_by(facts.c.notification_id)):
        out[key] = json.loads(payload)
    return dict(out)


def _iso(moment: date | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclass
class RunRecord:
    """A payout run as the log stood at a position: what it recorded and its state then."""

    run_id: str
    period: str
    position: int
    position_recorded_at: str | None
    chain_head: str
    policy_bundle: str
    parameters_digest: str
    results_json: str  # as recorded; decoded on first use (listing runs never decodes them)
    results_digest: str
    supersedes: str | None
    software: str
    computed_by: str
    computed_at: str | None
    recorded_at_position: int  # notification id of the run's own event
    state: str = "draft"
    history: list[dict[str, Any]] = field(default_factory=list)

    @functools.cached_property
    def results(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.results_json)
        return found

    @property
    def closes_period(self) -> bool:
        return self.state in ("approved", "paid")

    @property
    def ledger(self) -> str:
        """`performance` for a staff distribution run, `compensation` for a payout run."""
        return "performance" if self.period.startswith(PERFORMANCE) else "compensation"


def runs_at(conn: Connection, position: int | None = None) -> dict[str, RunRecord]:
    """Every payout run recorded up to `position`, with its state as of then."""
    query = select(facts.c.notification_id, facts.c.kind, facts.c.key, facts.c.payload).where(
        facts.c.kind.in_(("payout_run", "payout_state"))
    )
    if position is not None:
        query = query.where(facts.c.notification_id <= position)
    runs: dict[str, RunRecord] = {}
    for nid, kind, key, payload in conn.execute(query.order_by(facts.c.notification_id)):
        body = json.loads(payload)
        if kind == "payout_run":
            superseded = body["supersedes"]
            if superseded in runs:
                runs[superseded].state = "superseded"
            runs[key] = RunRecord(
                run_id=key,
                period=body["period"],
                position=body["position"],
                position_recorded_at=body["position_recorded_at"],
                chain_head=body["chain_head"],
                policy_bundle=body["policy_bundle"],
                parameters_digest=body["parameters_digest"],
                results_json=body["results_json"],
                results_digest=body["results_digest"],
                supersedes=superseded,
                software=body["software"],
                computed_by=body["computed_by"],
                computed_at=body["computed_at"],
                recorded_at_position=nid,
            )
        elif key in runs:
            runs[key].state = body["state"]
            runs[key].history.append({**body, "notification_id": nid})
    return runs


STAFF_KINDS = (
    "staff",
    "posting",
    "staff_coefficient",
    "outside_item",
    "pool",
    "surplus",
    "director",
)


@dataclass
class StaffFacts:
    staff_id: str
    name: str = ""
    postings: list[dict[str, Any]] = field(default_factory=list)
    coefficient: Decimal | None = None
    coefficient_reference: str = ""
    outside: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class PoolFacts:
    institution_code: str
    pool: Decimal | None = None
    reward_share: Decimal | None = None
    reference: str = ""
    surplus: Decimal = Decimal(0)
    surplus_share: Decimal | None = None
    director: str | None = None


def performance_facts(
    conn: Connection, year: int, position: int | None = None
) -> tuple[dict[str, StaffFacts], dict[str, PoolFacts]]:
    """Staff (names, postings, coefficients, outside items) and institutions' pools for
    `year`, as the log stood at `position`."""
    query = select(facts.c.kind, facts.c.institution_code, facts.c.key, facts.c.payload).where(
        facts.c.kind.in_(STAFF_KINDS), or_(facts.c.year == year, facts.c.year.is_(None))
    )
    if position is not None:
        query = query.where(facts.c.notification_id <= position)
    latest: dict[tuple[str, str | None, str], Any] = {}
    for kind, institution, key, payload in conn.execute(query.order_by(facts.c.notification_id)):
        latest[(kind, institution, key)] = json.loads(payload)
    staff: dict[str, StaffFacts] = {}
    pools: dict[str, PoolFacts] = {}
    for (kind, institution, key), body in latest.items():
        if kind in ("pool", "surplus", "director"):
            p = pools.setdefault(institution or "", PoolFacts(institution or ""))
            if kind == "pool":
                p.pool, p.reward_share = Decimal(body["pool"]), Decimal(body["reward_share"])
                p.reference = body["reference"]
            elif kind == "surplus":
                p.surplus, p.surplus_share = Decimal(body["surplus"]), Decimal(body["share"])
            else:
                p.director = body["staff_id"]
            continue
        staff_id = key.split("|")[0]
        person = staff.setdefault(staff_id, StaffFacts(staff_id))
        if kind == "staff":
            person.name = body["name"]
        elif kind == "posting":
            person.postings.append(body)
        elif kind == "staff_coefficient":
            person.coefficient = Decimal(body["coefficient"])
            person.coefficient_reference = body["reference"]
        elif kind == "outside_item":
            person.outside[body["kind"]] = Decimal(body["amount"])
    for person in staff.values():
        person.postings.sort(key=lambda p: p["from_date"])
    return staff, pools
