"""Policy (政策参数): parameters in force, history, what-if.

- `GET /policy?date=YYYY-MM-DD&scheme=compensation|insurance` (everyone): the parameters in
  force on a day, grouped as the bundle groups them, each with its value, unit, effective date
  and the document and clause it comes from.
- `GET /policy/history?scheme=…` (everyone): every adoption and parameter change — who, when
  (log position and time), why (the adoption's document, the change's reason and approver),
  and the old and new value.
- `GET /policy/what-if`, `POST /policy/what-if` (admin, auditor; CSRF): a period and up to
  three parameter changes (path, value, effective from) computed beside the baseline, per
  institution (or per medical community for the fund) as a chart and a table. Nothing is
  written; the page shows the log's position before and after.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from dangliang.api.models import PERIOD_PATTERN
from dangliang.api.routes_insurance import FUND_PERIOD
from dangliang.application import Dangliang
from dangliang.application.accounts import Principal
from dangliang.domain.periods import Period
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.policy.parameter_values import show_value
from dangliang.web import explain_views
from dangliang.web import policy_views as views
from dangliang.web.guard import AUDIT, READ, PageError, Service, form, page
from dangliang.web.rendering import render

router = APIRouter()

Reader = Annotated[Principal, Depends(page(*READ))]
Scheme = Annotated[str, Query(pattern="^(compensation|insurance)$")]
TextList = Annotated[list[str], Form(max_length=200)]


@router.get("/policy")
def policy_page(
    request: Request,
    app: Service,
    me: Reader,
    on: Annotated[date | None, Query(alias="date")] = None,
    scheme: Scheme = "compensation",
) -> Response:
    day = on or date.today()
    at = app.catch_up()
    found = app.parameters_in_force(on=day, position=at, scheme=scheme)
    policy = app.policy(position=at, scheme=scheme)
    described = views.descriptions(policy.digest)
    return render(
        request,
        "policy/index.html",
        day=day,
        scheme=scheme,
        schemes=views.SCHEMES,
        doc=found,
        policy=policy,
        document=described.get("metadata.document", ""),
        groups=views.grouped(found["parameters"], described),
        may_try=me.role in AUDIT,
    )


@router.get("/policy/history")
def history_page(
    request: Request, app: Service, me: Reader, scheme: Scheme = "compensation"
) -> Response:
    entries = app.policy_history(scheme)
    return render(
        request,
        "policy/history.html",
        scheme=scheme,
        schemes=views.SCHEMES,
        entries=list(reversed(entries)),
        head=app.log_head(),
    )


def _options(app: Dangliang, scheme: str) -> list[dict[str, str]]:
    """The parameters a what-if may change, with the value in force today."""
    tree = app.policy(scheme=scheme).tree
    today = date.today()
    options = []
    for path in sorted(tree):
        param = tree.parameter(path)
        current = param.in_force(today)
        options.append(
            {
                "path": path,
                "unit": param.unit,
                "current": show_value(current.value) if current else "—",
            }
        )
    return options


def _what_if_page(
    request: Request,
    app: Dangliang,
    *,
    scheme: str,
    period: str,
    rows: list[views.ChangeRow],
    status: int = 200,
    **more: Any,
) -> Response:
    return render(
        request,
        "policy/what_if.html",
        status=status,
        scheme=scheme,
        schemes=views.SCHEMES,
        period_text=period,
        rows=rows,
        options=_options(app, scheme),
        component_labels=explain_views.COMPONENT_LABELS,
        figure_labels=explain_views.FIGURE_LABELS,
        **{"problems": [], "result": None, **more},
    )


@router.get("/policy/what-if")
def what_if_form(
    request: Request,
    app: Service,
    _: Annotated[Principal, Depends(page(*AUDIT))],
    scheme: Scheme = "compensation",
    period: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    return _what_if_page(
        request,
        app,
        scheme=scheme,
        period=period or str(date.today().year - 1),
        rows=views.form_rows([], [], []),
    )


@router.post("/policy/what-if")
def what_if(
    request: Request,
    app: Service,
    _: Annotated[Principal, Depends(form(*AUDIT))],
    period: Annotated[str, Form(max_length=10)],
    scheme: Annotated[str, Form(pattern="^(compensation|insurance)$")] = "compensation",
    path: TextList = [],  # noqa: B006 (FastAPI copies defaults)
    value: TextList = [],  # noqa: B006
    effective_from: TextList = [],  # noqa: B006
) -> Response:
    rows = views.form_rows(path, value, effective_from)
    problems: list[Problem] = []
    found: Period | None = None
    try:
        found = _period(period.strip(), scheme)
    except PageError as e:
        problems.append(Problem("what-if", None, "period", e.message_zh, e.message_en))
    tree = app.policy(scheme=scheme).tree
    first_day = found.first_day if found else date.today()
    scenario, more = views.scenario_of(rows, tree, first_day)
    problems += more
    if found is None or scenario is None or problems:
        return _what_if_page(
            request, app, scheme=scheme, period=period, rows=rows, status=422, problems=problems
        )
    before = app.catch_up()
    try:
        if scheme == "insurance":
            sets = [f"{r.path}={r.value}" for r in rows if r.path and r.value]
            result = views.insurance_result(app.insurance_what_if(found, sets, position=before))
        else:
            result = views.compensation_result(app.what_if(found, scenario, position=before))
    except ProblemsFound as e:
        return _what_if_page(
            request, app, scheme=scheme, period=period, rows=rows, status=422, problems=e.problems
        )
    return _what_if_page(
        request,
        app,
        scheme=scheme,
        period=found.label,
        rows=rows,
        result=result,
        found_period=found,
        scenario=scenario,
        head_before=before,
        head_after=app.log_head(),
    )


def _period(text: str, scheme: str) -> Period:
    pattern = FUND_PERIOD if scheme == "insurance" else PERIOD_PATTERN
    if not re.fullmatch(pattern, text):
        quarter = ("、2024-Q1", ", 2024-Q1") if scheme == "insurance" else ("", "")
        raise PageError(
            422,
            f"期间应为 2024、2024-03{quarter[0]}：{text!r}",
            f"the period must be like 2024, 2024-03{quarter[1]}: {text!r}",
        )
    if scheme == "insurance":
        return explain_views.fund_period(text)
    return explain_views.compensation_period(text)
