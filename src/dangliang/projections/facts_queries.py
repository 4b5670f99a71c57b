"""Reading the compensation inputs (补偿计算输入) as the log stood at a position.

Each reader takes the latest `inp_facts` row per fact with notification id ≤ the position
(now when None; see `facts`): the policy in force (the adopted bundle with every dated change
since), every institution's facts for a year, force-majeure declarations, payout runs with
their state then (`RunRecord`, `runs_at`), and staff and pool facts for performance pay.
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

from sqlalchemy import Connection, or_, select

from dangliang.domain.errors import DomainError
from dangliang.domain.payout import ledger_of
from dangliang.domain.policy import SCHEMES
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.parameters_from_log import tree_from_canonical_json, value_from_canonical
from dangliang.policy.subsidy_records import DirectiveTask
from dangliang.projections.facts import INPUT_KINDS, STAFF_KINDS, facts


class NoPolicyAdopted(DomainError):
    """No policy bundle in the log (at that position): nothing can be computed."""


@dataclass
class PolicyInForce:
    """The adopted bundle with every change recorded since, as at a log position."""

    tree: ParameterTree
    bundle_name: str
    digest: str  # of the adopted bundle
    reference: str
    adopted_at: int  # notification id
    changes: list[dict[str, Any]] = field(default_factory=list)


def policy_at(
    conn: Connection, position: int | None = None, *, scheme: str = "compensation"
) -> PolicyInForce:
    """The policy of a scheme (`compensation` or `insurance`) as the log stood at `position`
    (now when None)."""
    prefix = "insurance_" if scheme == "insurance" else ""
    query = select(facts.c.notification_id, facts.c.kind, facts.c.payload).where(
        facts.c.kind.in_((f"{prefix}policy", f"{prefix}parameter_change"))
    )
    if position is not None:
        query = query.where(facts.c.notification_id <= position)
    found: PolicyInForce | None = None
    for nid, kind, payload in conn.execute(query.order_by(facts.c.notification_id)):
        body = json.loads(payload)
        if kind == f"{prefix}policy":
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
        command = "insurance policy load" if scheme == "insurance" else "policy load"
        raise NoPolicyAdopted(
            f"尚未采用{SCHEMES[scheme]}参数包：请先运行 dangliang {command} FILE",
            f"no {scheme} policy bundle adopted: run `dangliang {command} FILE` first",
        )
    return found


def policy_facts(
    conn: Connection, scheme: str = "compensation", position: int | None = None
) -> list[tuple[int, str, dict[str, Any]]]:
    """Every adoption (`policy`) and parameter change (`parameter_change`) of a scheme up to
    `position` (now when None), oldest first: (notification id, kind, what was recorded).
    The kinds are given without the fund's `insurance_` prefix."""
    prefix = "insurance_" if scheme == "insurance" else ""
    query = select(facts.c.notification_id, facts.c.kind, facts.c.payload).where(
        facts.c.kind.in_((f"{prefix}policy", f"{prefix}parameter_change"))
    )
    if position is not None:
        query = query.where(facts.c.notification_id <= position)
    return [
        (int(nid), kind.removeprefix(prefix), json.loads(payload))
        for nid, kind, payload in conn.execute(query.order_by(facts.c.notification_id))
    ]


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
    rule_set: str = "1"  # the version of its pipeline's rules (read models made before: "1")
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
        """`performance` for a staff distribution run, `insurance` for a fund run,
        `compensation` for a payout run."""
        return ledger_of(self.period)

    @property
    def rule_set_label(self) -> str:
        """`compensation v1`: the pipeline (the run's ledger) and the version it recorded."""
        return f"{self.ledger} v{self.rule_set}"


def runs_at(
    conn: Connection, position: int | None = None, *, period: str | None = None
) -> dict[str, RunRecord]:
    """Every payout run recorded up to `position`, with its state as of then; only the runs
    of one period (`2024-03`, `perf-2024`) when `period` is given (a run supersedes only an
    earlier run of its own period, so their states are complete)."""
    query = select(facts.c.notification_id, facts.c.kind, facts.c.key, facts.c.payload).where(
        facts.c.kind.in_(("payout_run", "payout_state"))
    )
    if position is not None:
        query = query.where(facts.c.notification_id <= position)
    if period is not None:
        query = query.where(facts.c.key.startswith(f"{period}#", autoescape=True))
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
                rule_set=body.get("rule_set", "1"),
            )
        elif key in runs:
            runs[key].state = body["state"]
            runs[key].history.append({**body, "notification_id": nid})
    return runs


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
