"""Runs (支付批次): list, run, approve, reject, paid, documents, replay, diff.

- `GET /runs`: every payout, distribution and fund run (filters: year, kind, state) with
  who computed and approved it and its total (a clerk: their own institutions' amount); an
  admin starts a run from here (`POST /runs`: ledger and period).
- `GET /runs/{id}`: one run — its header, its lines (a clerk: theirs), the adjustments with
  their causes, the documents and the actions this person may take in this state. Run ids
  contain `#`: links write `2024-03~1`; `2024-03%231` works as well.
- `POST /runs/{id}/approve | reject | paid`: redirect (303) back to the run with `?done=…`.
  Maker-checker: whoever computed a run is never offered its approval, and the domain
  refuses it if the form is sent anyway. Refusals are pages with the domain's message.
- `GET /runs/{id}/statement.xlsx` (county-wide: admin, auditor), `/statement.pdf` (a clerk:
  their lines only), `/payslips/{code}.pdf` (a distribution run; a clerk: their own).
- `GET /runs/{id}/replay`, `GET /runs/diff?a=&b=`: the audit (admin, auditor).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from dangliang.application import Dangliang
from dangliang.application.accounts import Principal
from dangliang.application.workbench_queries import RunRecord
from dangliang.domain.payout import bare_period
from dangliang.domain.periods import Period
from dangliang.payouts import runs as payouts
from dangliang.payouts.statements import write_statement
from dangliang.web import run_views as views
from dangliang.web.guard import (
    ADMIN,
    APPROVE,
    AUDIT,
    READ,
    PageError,
    Service,
    form,
    page,
    require_institution,
)
from dangliang.web.rendering import render

router = APIRouter()

RunText = Annotated[str, Path(max_length=40, description="`2024-03~1` or `2024-03%231`")]
Code = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Text = Annotated[str, Form(max_length=500)]
Reader = Annotated[Principal, Depends(page(*READ))]
Auditor = Annotated[Principal, Depends(page(*AUDIT))]
Approver = Annotated[Principal, Depends(form(*APPROVE))]
Admin = Annotated[Principal, Depends(form(*ADMIN))]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PERIODS = {
    "month_year": re.compile(r"^\d{4}(-(0[1-9]|1[0-2]))?$"),
    "fund": re.compile(r"^\d{4}(-(0[1-9]|1[0-2]|Q[1-4]))?$"),
}
DONE = {
    "computed": (
        "已计算并记录草稿批次，请由另一人审核",
        "draft run computed; someone else approves it",
    ),
    "approved": ("批次已审核", "run approved"),
    "rejected": ("批次已退回", "run sent back"),
    "paid": ("已记录支付", "payment recorded"),
}


def _run(app: Dangliang, text: str) -> RunRecord:
    return app.payout_run(views.run_id_of(text))


def _back(run_id: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/runs/{views.slug(run_id)}?done={done}", status_code=303)


def _choice(value: str | None, allowed: dict[str, Any], what: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise PageError(422, f"请求参数有误：{what}", f"invalid request: {what}")
    return value


def _decided(run_text: str, done: str, record: Callable[..., Any], **fields: str) -> Response:
    """A decision on a run (`record(run_id, **fields)`: the form's text and who), then back to
    the run saying what was done."""
    run_id = views.run_id_of(run_text)
    record(run_id, **fields)
    return _back(run_id, done)


def _file_name(kind: str, run: RunRecord, suffix: str) -> str:
    """`statement-2024-03-1.xlsx`: a download's name (`#` and `~` are awkward in files)."""
    return f"{kind}-{views.slug(run.run_id).replace('~', '-')}{suffix}"


def _download(content: bytes, media: str, name: str) -> Response:
    return Response(
        content,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


# ---- the list and starting a run ----------------------------------------------------------


@router.get("/runs")
def runs_page(
    request: Request,
    app: Service,
    me: Reader,
    year: Annotated[str | None, Query(pattern=r"^(\d{4})?$")] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    state: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    chosen_kind = _choice(kind, views.KINDS, "kind")
    chosen_state = _choice(state, views.STATES, "state")
    runs = list(app.payout_runs().values())
    communities = views.own_communities(app, me)
    rows = views.list_rows(
        runs,
        me,
        communities,
        year=int(year) if year else None,
        kind=chosen_kind,
        state=chosen_state,
    )
    return render(
        request,
        "runs/list.html",
        rows=rows,
        years=views.years_of(runs),
        kinds=views.KINDS,
        states=views.STATES,
        ledgers=views.LEDGERS,
        year=year or "",
        kind=chosen_kind or "",
        state=chosen_state or "",
    )


@router.post("/runs")
def start_run(
    app: Service,
    me: Admin,
    ledger: Annotated[str, Form(max_length=32)],
    period: Annotated[str, Form(max_length=16)],
) -> Response:
    if ledger not in views.LEDGERS:
        raise PageError(422, f"未知的批次类型：{ledger}", f"unknown kind of run: {ledger}")
    label = period.strip()
    example = "、2024-Q1" if ledger == "insurance" else ""
    if not PERIODS[views.LEDGERS[ledger][2]].match(label) or not 1949 <= int(label[:4]) <= 2200:
        raise PageError(
            422,
            f"期间格式有误：{label}（如 2024-03、2024{example}）",
            f"not a period: {label} (e.g. 2024-03, 2024{example.replace('、', ', ')})",
        )
    found = Period.quarter_of(label) if "Q" in label else Period.of(label)
    today = date.today()
    if ledger == "insurance":
        run = app.run_insurance(found, actor=me.name, today=today)
    elif ledger == "distribution":
        run = app.run_distribution(found, actor=me.name, today=today)
    else:
        run = app.run_payout(found, actor=me.name, today=today)
    return _back(run.run_id, "computed")


# ---- two runs side by side (before /runs/{id}, which would take `diff` as an id) ------------


@router.get("/runs/diff")
def diff_page(
    request: Request,
    app: Service,
    me: Auditor,
    a: Annotated[str | None, Query(max_length=40)] = None,
    b: Annotated[str | None, Query(max_length=40)] = None,
    everything: Annotated[bool, Query(alias="all")] = False,
) -> Response:
    runs = sorted(app.payout_runs().values(), key=lambda r: r.recorded_at_position, reverse=True)
    context: dict[str, Any] = {"runs": runs, "a": a or "", "b": b or "", "everything": everything}
    if a and b:
        first, second = _run(app, a), _run(app, b)
        if first.ledger != second.ledger:
            raise PageError(
                409,
                f"{first.run_id} 与 {second.run_id} 不是同类批次，不能比较",
                f"{first.run_id} and {second.run_id} are runs of different ledgers",
            )
        if first.recorded_at_position > second.recorded_at_position:
            first, second = second, first
        names = app.institution_names() if first.ledger == "performance" else {}
        causes: dict[str, list[str]] = {}
        differences: list[str] = []
        if first.ledger == "compensation":
            found = app.diff_payouts(first.run_id, second.run_id)
            causes = {i["code"]: i["changes"] + i["causes"] for i in found["institutions"]}
        elif first.ledger == "insurance":
            differences = app.diff_payouts(first.run_id, second.run_id)["differences"]
        lines = views.side_by_side(first, second, names, everything)
        context.update(
            first=payouts.run_header(first),
            second=payouts.run_header(second),
            unit=("医共体", "Community")
            if first.ledger == "insurance"
            else ("机构", "Institution"),
            lines=lines,
            causes=causes,
            differences=differences,
            first_slug=views.slug(first.run_id),
            second_slug=views.slug(second.run_id),
        )
    return render(request, "runs/diff.html", **context)


# ---- one run --------------------------------------------------------------------------------


@router.get("/runs/{run_text}")
def run_page(
    request: Request,
    run_text: RunText,
    app: Service,
    me: Reader,
    done: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    run = _run(app, run_text)
    header = payouts.run_header(run)
    communities = views.own_communities(app, me) if run.ledger == "insurance" else None
    keep = views.visible_codes(run, me, communities)
    names = app.institution_names() if run.ledger == "performance" else {}
    table = views.run_table(run, names, keep)
    found = views.amounts(run)
    others = [
        r for r in app.payout_runs().values() if r.period == run.period and r.run_id != run.run_id
    ]
    is_maker = me.name == run.computed_by
    return render(
        request,
        "runs/show.html",
        run=header,
        slug=views.slug(run.run_id),
        bare=bare_period(run.period),
        ledger=run.ledger,
        kind=views.kind_of(run.period),
        kinds=views.KINDS,
        states=views.STATES,
        table=table,
        adjustments=views.adjustments(run, table),
        amount=found.total if keep is None else found.of(keep),
        county_wide=keep is None,
        others=others,
        is_maker=is_maker,
        may_approve=me.role in APPROVE and run.state == "draft" and not is_maker,
        may_reject=me.role in APPROVE and run.state == "draft",
        may_pay=me.role in ADMIN and run.state == "approved",
        may_audit=me.role in AUDIT,
        statements=run.ledger != "performance" and bool(table.rows),
        done=DONE.get(done or ""),
        slug_of=views.slug,
    )


@router.post("/runs/{run_text}/approve")
def approve(run_text: RunText, app: Service, me: Approver, reference: Text) -> Response:
    return _decided(run_text, "approved", app.approve_payout, reference=reference, actor=me.name)


@router.post("/runs/{run_text}/reject")
def reject(run_text: RunText, app: Service, me: Approver, reason: Text) -> Response:
    return _decided(run_text, "rejected", app.reject_payout, reason=reason, actor=me.name)


@router.post("/runs/{run_text}/paid")
def paid(run_text: RunText, app: Service, me: Admin, reference: Text) -> Response:
    return _decided(run_text, "paid", app.mark_payout_paid, reference=reference, actor=me.name)


# ---- documents --------------------------------------------------------------------------------


@router.get("/runs/{run_text}/statement.xlsx")
def statement_xlsx(run_text: RunText, app: Service, _: Auditor) -> Response:
    """The county-wide statement (支付单 / 拨付单), the same bytes as the CLI's."""
    run = _run(app, run_text)
    if run.ledger == "performance":
        raise PageError(
            409,
            f"{run.run_id} 是绩效分配批次：请下载各机构的工资条",
            f"{run.run_id} is a distribution run: download its payslips",
        )
    name = _file_name("statement", run, ".xlsx")
    with tempfile.TemporaryDirectory(prefix="dangliang-web-statement-") as folder:
        path = FilePath(folder) / name
        if run.ledger == "insurance":
            app.write_insurance_statement(run.run_id, path)
        else:
            write_statement(payouts.run_json(run), path)
        content = path.read_bytes()
    return _download(content, XLSX, name)


@router.get("/runs/{run_text}/statement.pdf")
def statement_pdf(run_text: RunText, app: Service, me: Reader) -> Response:
    """The statement as a PDF; a clerk's has only their lines and no county totals."""
    run = _run(app, run_text)
    content = app.statement_pdf(run.run_id, institutions=me.scope)
    return _download(content, "application/pdf", _file_name("statement", run, ".pdf"))


@router.get("/runs/{run_text}/payslips/{code}.pdf")
def payslips_pdf(
    run_text: RunText,
    code: Code,
    app: Service,
    me: Reader,
) -> Response:
    """An institution's payslips (工资条) from a distribution run, a page per person."""
    require_institution(me, code)
    run = _run(app, run_text)
    content = app.payslips_pdf(run.run_id, code)
    return _download(content, "application/pdf", _file_name("payslips", run, f"-{code}.pdf"))


# ---- replay -----------------------------------------------------------------------------------


@router.get("/runs/{run_text}/replay")
def replay_page(
    request: Request,
    run_text: RunText,
    app: Service,
    _: Auditor,
) -> Response:
    run = _run(app, run_text)
    return render(
        request,
        "runs/replay.html",
        run=payouts.run_header(run),
        slug=views.slug(run.run_id),
        replay=app.replay_payout(run.run_id),
        kinds=views.KINDS,
        kind=views.kind_of(run.period),
        bare=bare_period(run.period),
    )
