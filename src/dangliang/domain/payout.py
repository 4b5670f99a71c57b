"""Payout runs (支付批次): what was computed for a period, approved and paid — a legal record.

One `PayoutPeriod` aggregate per period (a month's advances, 按月预拨, or a year's settlement,
年终清算) holds its runs, so the rules that span runs are checked in one place and the event
store's optimistic concurrency serialises two people acting on the same period:

- a run records the log position it saw (and that position's time), the policy used, the
  chain head of the log there, the version of the rules that computed it (`rule_set`), its
  results and their digest — the decision to pay, so the results are part of the fact;
- draft → approved → paid, or draft → rejected (with a reason); a new run supersedes the
  period's draft, never an approved run (retroactive changes are paid as adjustments in a
  later period's run: docs/compensation.md, step 11);
- maker-checker: whoever approves must not be whoever computed the run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from dangliang.domain import ids
from dangliang.domain.errors import DomainError, InvalidValue, NotFound
from dangliang.domain.values import require_text

KINDS = (
    "monthly_advance",
    "annual_settlement",
    "performance_pay",
    "insurance_advance",
    "insurance_settlement",
)
PERFORMANCE = "perf-"
"""Prefix of a performance-pay distribution's period (`perf-2024`, `perf-2024-03`): the
institution-compensation and the staff-distribution runs of one period are separate ledgers."""
INSURANCE = "ins-"
"""Prefix of a medical-insurance fund run's period (`ins-2024-03`, `ins-2024-Q1`, `ins-2024`):
the fund's advances and settlements to medical communities are a ledger of their own."""
LEDGERS = {PERFORMANCE: "performance", INSURANCE: "insurance"}


def ledger_of(period: str) -> str:
    """`compensation`, `performance` or `insurance`: which ledger a period's runs belong to."""
    return next((name for p, name in LEDGERS.items() if period.startswith(p)), "compensation")


def bare_period(period: str) -> str:
    """The period without its ledger prefix: `ins-2024-Q1` → `2024-Q1`."""
    return next((period[len(p) :] for p in LEDGERS if period.startswith(p)), period)


STATES_ZH = {
    "draft": "草稿",
    "approved": "已审核",
    "paid": "已支付",
    "rejected": "已退回",
    "superseded": "已被替代",
}


class PayoutRefused(DomainError):
    """A payout command the rules do not allow (maker-checker, state, one approved run)."""


class MalformedRunId(PayoutRefused, InvalidValue):
    """A run id that is not `PERIOD#N`."""


class PayoutPeriod(Aggregate):
    class Opened(Aggregate.Created):
        period: str  # "2024-03" or "2024"
        kind: str
        actor: str

    class RunComputed(Aggregate.Event):
        """支付批次已计算 (draft).

        `rule_set`: the version of the run's pipeline (`payouts.rulesets`) that computed the
        results — what a replay computes with. Version 2 of this event added it."""

        class_version = 2

        run_id: str
        position: int
        position_recorded_at: datetime | None
        chain_head: str
        policy_bundle: str
        parameters_digest: str
        results_json: str
        results_digest: str
        supersedes: str | None
        software: str
        actor: str
        rule_set: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Runs recorded before runs named their rule set were computed by the code that
            # became version 1 of every pipeline when versions were introduced.
            state["rule_set"] = "1"

    class RunApproved(Aggregate.Event):
        """支付批次已审核."""

        run_id: str
        reference: str
        actor: str

    class RunRejected(Aggregate.Event):
        """支付批次已退回."""

        run_id: str
        reason: str
        actor: str

    class RunPaid(Aggregate.Event):
        """支付批次已支付."""

        run_id: str
        reference: str
        actor: str

    @staticmethod
    def create_id(period: str, **_: Any) -> UUID:
        return ids.payout_period_id(period)

    @event(Opened)
    def __init__(self, period: str, kind: str, actor: str) -> None:
        self.period = period
        self.kind = kind
        self.states: dict[str, str] = {}
        self.makers: dict[str, str] = {}

    @classmethod
    def open(cls, *, period: str, actor: str) -> PayoutPeriod:
        ledger, bare = ledger_of(period), bare_period(period)
        kind = (
            "performance_pay"
            if ledger == "performance"
            else ("insurance_settlement" if len(bare) == 4 else "insurance_advance")
            if ledger == "insurance"
            else "annual_settlement"
            if len(bare) == 4
            else "monthly_advance"
        )
        return cls(period=period, kind=kind, actor=actor)

    @property
    def draft(self) -> str | None:
        return next((r for r, s in self.states.items() if s == "draft"), None)

    @property
    def closed_by(self) -> str | None:
        """The approved (or paid) run, if any: the period is closed."""
        return next((r for r, s in self.states.items() if s in ("approved", "paid")), None)

    def next_run_id(self) -> str:
        return f"{self.period}#{len(self.states) + 1}"

    def record_run(
        self,
        *,
        position: int,
        position_recorded_at: datetime | None,
        chain_head: str,
        policy_bundle: str,
        parameters_digest: str,
        results_json: str,
        results_digest: str,
        software: str,
        rule_set: str,
        actor: str,
    ) -> str:
        if self.closed_by is not None:
            raise PayoutRefused(
                f"{self.period} 已有审核通过的批次 {self.closed_by}，不能重算；"
                "追溯变更将作为调整计入下一期间的批次",
                f"{self.period} already has an approved run {self.closed_by}; it is never "
                "recomputed: retroactive changes are paid as adjustments in a later run",
            )
        run_id = self.next_run_id()
        self._run_computed(
            run_id=run_id,
            position=position,
            position_recorded_at=position_recorded_at,
            chain_head=chain_head,
            policy_bundle=policy_bundle,
            parameters_digest=parameters_digest,
            results_json=results_json,
            results_digest=results_digest,
            supersedes=self.draft,
            software=software,
            actor=actor,
            rule_set=require_text(rule_set, "规则版本", "a rule-set version"),
        )
        return run_id

    @event(RunComputed)
    def _run_computed(
        self,
        run_id: str,
        position: int,
        position_recorded_at: datetime | None,
        chain_head: str,
        policy_bundle: str,
        parameters_digest: str,
        results_json: str,
        results_digest: str,
        supersedes: str | None,
        software: str,
        actor: str,
        rule_set: str,
    ) -> None:
        if supersedes is not None:
            self.states[supersedes] = "superseded"
        self.states[run_id] = "draft"
        self.makers[run_id] = actor

    def approve(self, *, run_id: str, reference: str, actor: str) -> None:
        self._require_state(run_id, "draft", "审核", "approved")
        if self.makers[run_id] == actor:
            raise PayoutRefused(
                f"审核人不能是计算人（{actor}）：须由另一人审核",
                f"the approver must not be who computed the run ({actor}): maker-checker",
            )
        self._approved(
            run_id=run_id,
            reference=require_text(reference, "审核依据", "an approval reference"),
            actor=actor,
        )

    @event(RunApproved)
    def _approved(self, run_id: str, reference: str, actor: str) -> None:
        self.states[run_id] = "approved"

    def reject(self, *, run_id: str, reason: str, actor: str) -> None:
        self._require_state(run_id, "draft", "退回", "rejected")
        self._rejected(
            run_id=run_id, reason=require_text(reason, "退回原因", "a reason"), actor=actor
        )

    @event(RunRejected)
    def _rejected(self, run_id: str, reason: str, actor: str) -> None:
        self.states[run_id] = "rejected"

    def mark_paid(self, *, run_id: str, reference: str, actor: str) -> None:
        self._require_state(run_id, "approved", "标记支付", "paid")
        self._paid(
            run_id=run_id,
            reference=require_text(reference, "支付凭证号", "a payment reference"),
            actor=actor,
        )

    @event(RunPaid)
    def _paid(self, run_id: str, reference: str, actor: str) -> None:
        self.states[run_id] = "paid"

    def _require_state(self, run_id: str, wanted: str, verb_zh: str, verb_en: str) -> None:
        state = self.states.get(run_id)
        if state is None:
            raise NotFound(f"没有批次 {run_id}", f"no run {run_id}")
        if state != wanted:
            raise PayoutRefused(
                f"批次 {run_id} 状态为{STATES_ZH[state]}，不能{verb_zh}",
                f"run {run_id} is {state}: it cannot be {verb_en}",
            )


def period_of_run(run_id: str) -> str:
    """`2024-03#2` → `2024-03`."""
    period, sep, number = run_id.partition("#")
    if not sep or not number.isdigit() or len(bare_period(period)) not in (4, 7):
        raise MalformedRunId(
            f"批次编号格式应为 期间#序号（如 2024-03#1、perf-2024#1、ins-2024-Q1#1）：{run_id!r}",
            f"a run id looks like PERIOD#N (e.g. 2024-03#1, perf-2024#1, ins-2024-Q1#1): "
            f"{run_id!r}",
        )
    return period
