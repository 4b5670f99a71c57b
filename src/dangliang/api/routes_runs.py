"""Payout and distribution runs (支付批次、绩效分配批次), their documents, and the audit."""

from __future__ import annotations

import tempfile
from datetime import date
from enum import StrEnum
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response

from dangliang.api import models
from dangliang.api.access import (
    Admin,
    Approver,
    Auditor,
    Reader,
    Service,
    Verifier,
    require_institution,
    scoped,
)
from dangliang.api.params import parse_period
from dangliang.api.refusals import ApiError
from dangliang.ledger.chain import parse_head
from dangliang.payouts import runs as payouts
from dangliang.payouts.statements import write_statement
from dangliang.projections.facts_queries import RunRecord

router = APIRouter()

RunId = Annotated[
    str,
    Path(
        max_length=32,
        description="`PERIOD#N`, e.g. `2024-03#1` or `perf-2024#1` (`#` sent as `%23`).",
        examples=["2024-03#1"],
    ),
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class StatementFormat(StrEnum):
    xlsx = "xlsx"
    csv = "csv"
    json = "json"


MEDIA = {"xlsx": XLSX, "csv": "text/csv; charset=utf-8", "json": "application/json"}


def run_doc(run: RunRecord) -> dict[str, Any]:
    """A run as one document: a payout run as its statement's JSON; a distribution run with
    each institution's shares as recorded."""
    if run.ledger == "performance":
        return {
            **payouts.run_header(run),
            "institutions": run.results["institutions"],
            "totals": run.results.get("totals"),
        }
    if run.ledger == "insurance":  # its communities: GET /insurance/runs/{run_id}
        return {**payouts.run_header(run), "institutions": [], "totals": run.results["totals"]}
    return payouts.run_json(run)


@router.get("/payout-runs", response_model=list[models.RunHeader], tags=["payout runs"])
def list_runs(
    app: Service,
    _: Reader,
    period: Annotated[str | None, Query(max_length=16, description="Only this period.")] = None,
) -> list[dict[str, Any]]:
    """Every payout and distribution run with its state, who computed and approved it, and
    what it stands on (log position, chain head, digests). No amounts: see one run."""
    runs = sorted(app.payout_runs().values(), key=lambda r: r.recorded_at_position)
    return [payouts.run_header(r) for r in runs if period is None or r.period.endswith(period)]


@router.post("/payout-runs", response_model=models.Run, status_code=201, tags=["payout runs"])
def run_payout(body: models.PeriodIn, app: Service, principal: Admin) -> dict[str, Any]:
    """Compute and record a draft payout run for a month that has ended (advances) or a
    year (settlement, with the advances actually paid). Someone else approves it."""
    run = app.run_payout(parse_period(body.period), actor=principal.name, today=date.today())
    return run_doc(run)


@router.post(
    "/distribution-runs", response_model=models.Run, status_code=201, tags=["performance pay"]
)
def run_distribution(body: models.PeriodIn, app: Service, principal: Admin) -> dict[str, Any]:
    """Compute and record a draft staff distribution run (a month's provisional shares or
    the year's final shares); approved and paid like a payout run."""
    found = parse_period(body.period)
    return run_doc(app.run_distribution(found, actor=principal.name, today=date.today()))


@router.get("/payout-runs/diff", response_model=models.RunDiff, tags=["audit"])
def diff_runs(
    app: Service,
    _: Auditor,
    a: Annotated[str, Query(max_length=32, examples=["2024-03#1"])],
    b: Annotated[str, Query(max_length=32, examples=["2024-03#2"])],
) -> dict[str, Any]:
    """Two payout runs side by side: every changed amount, and why (the records, inputs and
    parameters that changed between their log positions)."""
    return app.diff_payouts(a, b)


@router.get("/payout-runs/{run_id}", response_model=models.Run, tags=["payout runs"])
def show_run(run_id: RunId, app: Service, principal: Reader) -> dict[str, Any]:
    """One run with its amounts (a clerk sees their institutions' lines only)."""
    return scoped(run_doc(app.payout_run(run_id)), principal, None)


@router.post("/payout-runs/{run_id}/approve", response_model=models.Run, tags=["payout runs"])
def approve(
    run_id: RunId, body: models.ReferenceIn, app: Service, principal: Approver
) -> dict[str, Any]:
    """Approve a draft run (maker-checker: not by whoever computed it)."""
    return run_doc(app.approve_payout(run_id, reference=body.reference, actor=principal.name))


@router.post("/payout-runs/{run_id}/reject", response_model=models.Run, tags=["payout runs"])
def reject(
    run_id: RunId, body: models.ReasonIn, app: Service, principal: Approver
) -> dict[str, Any]:
    """Send a draft run back with the reason; the period can then be run again."""
    return run_doc(app.reject_payout(run_id, reason=body.reason, actor=principal.name))


@router.post("/payout-runs/{run_id}/paid", response_model=models.Run, tags=["payout runs"])
def paid(run_id: RunId, body: models.ReferenceIn, app: Service, principal: Admin) -> dict[str, Any]:
    """Record that an approved run was paid (the payment reference)."""
    return run_doc(app.mark_payout_paid(run_id, reference=body.reference, actor=principal.name))


@router.get("/payout-runs/{run_id}/replay", response_model=models.Replay, tags=["audit"])
def replay(run_id: RunId, app: Service, _: Auditor) -> dict[str, Any]:
    """Recompute the run from the log as it stood at the run's position, with the rule set
    the run recorded (`rule_set`, e.g. `compensation v1`): identical to the fen (and the same
    chain head), or every difference listed. A run whose rule set this software does not have
    is refused (422), never recomputed with another."""
    return app.replay_payout(run_id)


@router.get(
    "/payout-runs/{run_id}/statement",
    tags=["payout runs"],
    response_class=Response,
    responses={
        200: {
            "description": "The statement (支付单).",
            "content": {XLSX: {}, "text/csv": {}, "application/json": {}},
        }
    },
)
def statement(
    run_id: RunId,
    app: Service,
    _: Auditor,
    format: StatementFormat = StatementFormat.xlsx,
) -> Response:
    """A payout run's statement: XLSX with Chinese headers, CSV (UTF-8 with BOM), or JSON —
    the same bytes as `dangliang payout statement`."""
    run = app.payout_run(run_id)
    if run.ledger == "insurance":
        raise ApiError(
            409,
            f"{run_id} 是医保基金批次：请用 /insurance/runs/{{run_id}}/statement",
            f"{run_id} is a fund run: use /insurance/runs/{{run_id}}/statement",
        )
    if run.ledger == "performance":
        raise ApiError(
            409,
            f"{run_id} 是绩效分配批次：请下载工资条或分配表",
            f"{run_id} is a distribution run: download its payslips or sheets",
        )
    name = f"statement-{run_id.replace('#', '-')}.{format.value}"
    with tempfile.TemporaryDirectory(prefix="dangliang-statement-") as folder:
        content = write_statement(payouts.run_json(run), FilePath(folder) / name).read_bytes()
    return Response(
        content,
        media_type=MEDIA[format.value],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/payout-runs/{run_id}/payslips/{staff_id}",
    tags=["performance pay"],
    response_class=HTMLResponse,
    responses={200: {"description": "The payslip (工资条), printable HTML."}},
)
def payslip(
    run_id: RunId,
    staff_id: Annotated[str, Path(max_length=64)],
    app: Service,
    principal: Reader,
    institution: Annotated[
        str | None, Query(max_length=64, description="When the person is in several.")
    ] = None,
) -> HTMLResponse:
    """One person's payslip from a distribution run (a clerk: their institutions' staff)."""
    from dangliang.payouts.payslips import payslip_html

    run = app.payout_run(run_id)
    codes = [
        i["code"]
        for i in app.distribution_results(run)["institutions"]
        if any(s.get("staff_id") == staff_id for s in i["staff"])
        and (institution is None or i["code"] == institution)
    ]
    if not codes:
        raise ApiError(
            404, f"批次 {run_id} 中没有职工 {staff_id}", f"run {run_id} has no staff {staff_id}"
        )
    visible = [c for c in codes if principal.may_see(c)]
    if not visible:
        require_institution(principal, codes[0])
    return HTMLResponse(payslip_html(app.distribution_doc(run, visible[0]), staff_id))


@router.get(
    "/payout-runs/{run_id}/sheets/{institution}",
    tags=["performance pay"],
    response_class=Response,
    responses={200: {"description": "The distribution sheet (分配表).", "content": {XLSX: {}}}},
)
def distribution_sheet(
    run_id: RunId,
    institution: Annotated[str, Path(max_length=64)],
    app: Service,
    principal: Reader,
) -> Response:
    """An institution's distribution sheet (XLSX) from a distribution run."""
    from dangliang.payouts.payslips import write_distribution_sheet

    require_institution(principal, institution)
    doc = app.distribution_doc(app.payout_run(run_id), institution)
    name = f"distribution-{run_id.replace('#', '-')}-{institution}.xlsx"
    with tempfile.TemporaryDirectory(prefix="dangliang-sheet-") as folder:
        content = write_distribution_sheet(doc, FilePath(folder) / name).read_bytes()
    return Response(
        content,
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/audit/verify", response_model=models.Verification, tags=["audit"])
def verify(
    app: Service,
    _: Verifier,
    expected_head: Annotated[
        str | None,
        Query(
            max_length=128,
            description="`POSITION:SHA256` from a signed document; checked against the log.",
        ),
    ] = None,
) -> dict[str, Any]:
    """Recompute the hash chain over every stored event and check it, and every payout
    run's recorded chain head, against the log itself."""
    try:
        expected = parse_head(expected_head) if expected_head else None
    except ValueError as e:
        raise ApiError(422, str(e), str(e)) from None
    return app.verify_log(expected_head=expected)
