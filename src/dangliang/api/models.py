"""Request and response models of the HTTP API.

Money and equivalents are decimal *strings* (`"1234.50"`), exactly as computed; never floats.
Deep results (a computation's trace, an explanation) keep the shape the CLI's `--json` prints,
documented in docs/compensation.md and docs/payouts.md; their top level is typed here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PERIOD_PATTERN = r"^[0-9]{4}(-[0-9]{2})?$"
Period = Field(
    pattern=PERIOD_PATTERN,
    description="A month `YYYY-MM` (advances) or a year `YYYY` (settlement).",
    examples=["2024", "2024-03"],
)


class Open(BaseModel):
    """A document whose further fields are described in the docs."""

    model_config = ConfigDict(extra="allow")


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Me(BaseModel):
    name: str
    role: str
    role_label: str
    institution: str | None
    scope: list[str] | None = Field(description="Institutions visible to a clerk; null: all.")


class Institution(BaseModel):
    code: str
    kind: str
    parent_code: str | None


class ImportResult(BaseModel):
    kind: str
    file: str
    rows: int
    accepted: int = Field(description="Rows that recorded something new.")
    unchanged: int = Field(description="Rows already in the log (a re-import changes nothing).")
    summary: str


class EquivalentsRow(Open):
    code: str
    records: int


class Equivalents(BaseModel):
    period: str
    position: int
    log_head: int
    as_of: str | None
    institutions: list[EquivalentsRow]


class Computation(Open):
    period: str
    kind: str
    position: int
    policy: dict[str, Any]
    institutions: list[dict[str, Any]]
    totals: dict[str, str] | None = None


class ChangeIn(BaseModel):
    path: str = Field(min_length=1, examples=["unit_price.basic_medical"])
    value: str = Field(min_length=1, examples=["13.00"])
    effective_from: date | None = Field(
        default=None, description="Default: the first day of the period."
    )


class WhatIfIn(BaseModel):
    period: str = Period
    changes: list[ChangeIn] = Field(min_length=1)
    institution: str | None = None
    as_of: datetime | None = None
    position: int | None = Field(default=None, ge=0)


class WhatIf(Open):
    period: str
    position: int
    institutions: list[dict[str, Any]]
    written: bool


class Explanation(Open):
    pass


class Records(BaseModel):
    institution: str
    period: str
    position: int
    records: list[dict[str, Any]]


class ParameterRow(BaseModel):
    path: str
    unit: str
    effective_from: str
    value: str
    reference: str


class PolicyInForce(BaseModel):
    bundle: str
    digest: str
    position: int
    parameters: list[ParameterRow]


class ParameterChangeIn(BaseModel):
    path: str = Field(min_length=1, examples=["unit_price.basic_medical"])
    value: str = Field(min_length=1, examples=["13.00"])
    effective_from: date
    reason: str = Field(min_length=1)
    approver: str = Field(min_length=1)


class ParameterChange(BaseModel):
    path: str
    value: str
    effective_from: date
    recorded: bool


class Distribution(Open):
    period: str
    position: int
    institutions: list[dict[str, Any]]
    warnings: list[str]


class PeriodIn(BaseModel):
    period: str = Period


class ReferenceIn(BaseModel):
    reference: str = Field(min_length=1, description="The approval / payment document number.")


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1)


class RunHeader(Open):
    run_id: str
    period: str
    kind: str | None
    state: str
    computed_by: str
    position: int
    chain_head: str
    results_digest: str


class Run(RunHeader):
    institutions: list[dict[str, Any]]
    totals: dict[str, Any] | None = None


class Replay(BaseModel):
    run_id: str
    position: int
    rule_set: str = Field(description="the rule set the run recorded and was recomputed with")
    rule_set_current: str = Field(description="the rule set new runs of its pipeline record")
    identical: bool
    differences: list[Any]
    results_digest_ok: bool
    chain_head_recorded: str
    chain_head_now: str


class RunDiff(Open):
    pass


class LateSeal(BaseModel):
    """Events sealed late by `audit seal`: the chain vouches for them only from `sealed_at`."""

    first: int
    last: int
    events: int
    sealed_at: str
    actor: str
    reason: str


class Verification(BaseModel):
    ok: bool
    checked: int
    head: str
    unchained: int = Field(description="Events stored after the chain's head: never sealed.")
    first_problem: dict[str, Any] | None
    problem_count: int
    runs_checked: int
    late_seals: list[LateSeal] = []
    lines: list[str]
