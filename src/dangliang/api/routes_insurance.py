"""The medical-insurance fund (医保基金): its communities, figures, explanations, what-if,
inputs and runs. Same roles as everywhere: an institution's clerk sees only the figures of
the medical community their institution belongs to, without the fund's county-wide figures.
Approving, rejecting, marking paid and replaying a fund run use the payout-run endpoints
(`/payout-runs/{run_id}/approve` …): a fund run is a payout run of the `ins-` ledger."""

from __future__ import annotations

import tempfile
from datetime import date
from enum import Enum
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, File, Path, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from dangliang.api import models
from dangliang.api.access import Admin, Auditor, Reader, Service
from dangliang.api.params import AsOf, Position, moment
from dangliang.api.refusals import UPLOAD_RESPONSES, ApiError
from dangliang.api.routes_data import forbidden, save_upload
from dangliang.api.routes_runs import MEDIA, RunId, StatementFormat
from dangliang.application import INSURANCE_KINDS, Dangliang
from dangliang.application.accounts import Principal
from dangliang.application.uploads import Forbidden, import_upload, safe_name
from dangliang.domain.periods import Period
from dangliang.payouts import runs as payouts

router = APIRouter(prefix="/insurance", tags=["insurance fund"])

FUND_PERIOD = r"^\d{4}(-(0[1-9]|1[0-2]|Q[1-4]))?$"
FundPeriod = Annotated[
    str,
    Query(
        pattern=FUND_PERIOD,
        description="A year `YYYY` (settlement), a quarter `YYYY-Qn` or a month `YYYY-MM`.",
        examples=["2024"],
    ),
]
Community = Annotated[str, Path(max_length=64, description="医共体编码")]
InsuranceKind = Enum("InsuranceKind", {k: k for k in INSURANCE_KINDS})  # type: ignore[misc]


class FundPeriodIn(BaseModel):
    period: str = Field(pattern=FUND_PERIOD, examples=["2024-Q1"])


class WhatIfIn(BaseModel):
    period: str = Field(pattern=FUND_PERIOD, examples=["2024"])
    set: list[Annotated[str, Field(max_length=200)]] = Field(
        min_length=1, max_length=20, examples=[["deqing.growth_rate=0.08"]]
    )


class ChangeIn(BaseModel):
    path: str = Field(max_length=200)
    value: str = Field(max_length=200)
    start: date
    reason: str = Field(min_length=1, max_length=500)
    approver: str = Field(min_length=1, max_length=200)


def fund_period(text: str) -> Period:
    if not 1949 <= int(text[:4]) <= 2200:
        raise ApiError(422, f"年份超出范围：{text[:4]}", f"year out of range: {text[:4]}")
    return Period.quarter_of(text) if "Q" in text else Period.of(text)


def own_communities(app: Dangliang, principal: Principal) -> set[str] | None:
    """A clerk's communities (those their institutions belong to); None = every one."""
    if principal.scope is None:
        return None
    return {c["code"] for c in app.communities() if principal.scope & set(c["members"])}


def require_community(app: Dangliang, principal: Principal, community: str) -> None:
    own = own_communities(app, principal)
    if own is not None and community not in own:
        raise ApiError(
            403,
            f"机构填报员 {principal.name} 只能查看本机构所属医共体",
            f"clerk {principal.name} may only see their own medical community, not {community}",
        )


def narrowed(app: Dangliang, doc: dict[str, Any], principal: Principal) -> dict[str, Any]:
    own = own_communities(app, principal)
    if own is not None:
        doc["communities"] = [c for c in doc["communities"] if c["code"] in own]
        for county_wide in ("figures", "fund", "totals", "counts", "steps"):
            doc.pop(county_wide, None)
    return doc


@router.get("/communities", response_model=list[models.Open])
def communities(app: Service, principal: Reader) -> list[dict[str, Any]]:
    """The medical communities (医共体) with their lead hospitals and member centres."""
    own = own_communities(app, principal)
    return [c for c in app.communities() if own is None or c["code"] in own]


@router.get("/figures", response_model=models.Open)
def figures(
    app: Service,
    principal: Reader,
    period: FundPeriod,
    as_of: AsOf = None,
    position: Position = None,
) -> dict[str, Any]:
    """The fund's figures for a month, quarter or year, per community (nothing recorded)."""
    found = app.compute_insurance(fund_period(period), as_of=moment(as_of), position=position)
    return narrowed(app, found.as_json(), principal)


@router.get("/explain/{community}", response_model=models.Open)
def explain(
    community: Community,
    app: Service,
    principal: Reader,
    period: FundPeriod,
    records: Annotated[int, Query(ge=0, le=1000)] = 0,
    as_of: AsOf = None,
    position: Position = None,
) -> dict[str, Any]:
    """Why a community gets what it gets: rule steps with parameters and clauses, enrolment
    and spending by month, and (with `records`) the first claims and enrolment rows."""
    require_community(app, principal, community)
    found = app.explain_insurance(
        community, fund_period(period), records=records, as_of=moment(as_of), position=position
    )
    if principal.scope is not None:
        found["steps"] = [s for s in found["steps"] if not s["rule"].startswith("fund")]
    return found


@router.get("/records/{community}", response_model=models.Open)
def records(
    community: Community,
    app: Service,
    principal: Reader,
    year: Annotated[int, Query(ge=1949, le=2200)],
    month: Annotated[int | None, Query(ge=1, le=12)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = 1000,
    as_of: AsOf = None,
    position: Position = None,
) -> dict[str, Any]:
    """The claims and enrolment rows behind a community's figures, as they stood then."""
    require_community(app, principal, community)
    return app.insurance_records(
        community, year, month=month, limit=limit, as_of=moment(as_of), position=position
    )


@router.post("/what-if", response_model=models.Open)
def what_if(body: WhatIfIn, app: Service, _: Auditor) -> dict[str, Any]:
    """The figures with changed parameters (`path=value`) beside the real ones; nothing is
    written."""
    return app.insurance_what_if(fund_period(body.period), body.set)


@router.get("/policy", response_model=models.Open)
def policy(app: Service, _: Reader, on: date | None = None) -> dict[str, Any]:
    """The fund's parameters with their dated values and references."""
    return app.parameters_in_force(on=on, position=app.catch_up(), scheme="insurance")


@router.post("/policy/changes", response_model=models.Open, status_code=201)
def change(body: ChangeIn, app: Service, principal: Admin) -> dict[str, Any]:
    """Record a dated change of one fund parameter, with its reason and approver."""
    changed = app.change_parameter(
        body.path,
        body.value,
        start=body.start,
        reason=body.reason,
        approver=body.approver,
        actor=principal.name,
        scheme="insurance",
    )
    return {"path": body.path, "value": body.value, "start": body.start, "recorded": changed}


@router.post("/imports/{kind}", response_model=models.Open, responses=UPLOAD_RESPONSES)
def upload(
    kind: InsuranceKind,
    file: Annotated[UploadFile, File(description="CSV, XLSX or JSON lines, as for the CLI.")],
    app: Service,
    principal: Admin,
) -> dict[str, Any]:
    """Import a fund file (docs/formats.md): refused whole (422, every problem with row,
    column and reason) when any row is wrong; re-importing the same file changes nothing.
    A body over the upload limit is refused with 413 as it arrives (see `/imports/{kind}`)."""
    name = FilePath(file.filename or f"{kind.value}.csv").name or f"{kind.value}.csv"
    try:
        with tempfile.TemporaryDirectory(prefix="dangliang-upload-") as folder:
            path = save_upload(file, FilePath(folder) / safe_name(name, kind.value))
            found = import_upload(
                app, kind.value, path, principal, display_name=name, today=date.today()
            )
    except Forbidden as e:
        raise forbidden(e) from None
    return {"kind": kind.value, "file": name, "summary": found.summary}


@router.post("/runs", response_model=models.Open, status_code=201)
def run(body: FundPeriodIn, app: Service, principal: Admin) -> dict[str, Any]:
    """Compute and record a draft fund run: advances of a month or quarter that has ended,
    or a year's settlement. Approve it at `/payout-runs/{run_id}/approve` (someone else)."""
    found = app.run_insurance(fund_period(body.period), actor=principal.name, today=date.today())
    return payouts.run_json(found)


@router.get("/runs", response_model=list[models.Open])
def runs(app: Service, _: Reader) -> list[dict[str, Any]]:
    """Every fund run with its state and what it stands on (no amounts: see one run)."""
    found = sorted(app.insurance_runs().values(), key=lambda r: r.recorded_at_position)
    return [payouts.run_header(r) for r in found]


@router.get("/runs/{run_id}", response_model=models.Open)
def show(run_id: RunId, app: Service, principal: Reader) -> dict[str, Any]:
    """One fund run with every community's figures (a clerk: their community's only)."""
    return narrowed(app, _fund_run(app, run_id), principal)


@router.get(
    "/runs/{run_id}/statement",
    response_class=Response,
    responses={
        200: {"description": "The statement (拨付单).", "content": {k: {} for k in MEDIA.values()}}
    },
)
def statement(
    run_id: RunId, app: Service, _: Auditor, format: StatementFormat = StatementFormat.xlsx
) -> Response:
    """A fund run's statement: XLSX (Chinese labels), CSV or JSON — the same bytes as
    `dangliang insurance statement`."""
    _fund_run(app, run_id)
    name = f"insurance-{run_id.replace('#', '-')}.{format.value}"
    with tempfile.TemporaryDirectory(prefix="dangliang-statement-") as folder:
        content = app.write_insurance_statement(run_id, FilePath(folder) / name).read_bytes()
    return Response(
        content,
        media_type=MEDIA[format.value],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _fund_run(app: Dangliang, run_id: str) -> dict[str, Any]:
    run = app.payout_run(run_id)
    if run.ledger != "insurance":
        raise ApiError(409, f"{run_id} 不是医保基金批次", f"{run_id} is not a fund run")
    return payouts.run_json(run)
