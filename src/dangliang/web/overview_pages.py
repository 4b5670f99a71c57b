"""County overview (县级概览): GET /.

For the bureau and the auditor: a year's headline figures (equivalents, the year's amount,
advances computed and advances paid by approved monthly runs, the settlement, and the budget
when the policy prices by point value), charts per centre (equivalents by category, amounts
by component, advances beside the settlement, assessment scores), the county month by month
(equivalents, and the advances of the recorded monthly runs) and the insurance fund's budget
and spending per medical community. Each chart's numbers are also in a table; each bar opens
the institution's page; each amount opens its explanation.

A clerk sees no county figure: `/` sends them (303) to their institution's page, which shows
their institution and its village clinics only.

The year defaults to the latest with service records. Every figure comes from one
computation of the year (`county_reads.year_figures`: the application's, kept per log
position), so the page costs one computation the first time after the log moved, and a
look-up afterwards; the fund's figures and the recorded runs are read at the same position.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from dangliang.application.accounts import Principal
from dangliang.policy.subsidy_records import CATEGORIES, COMPONENTS
from dangliang.web import dashboards as dash
from dangliang.web import institution_views as views
from dangliang.web.county_reads import fund_figures, recorded_advances, year_figures
from dangliang.web.guard import READ, PageError, Service, page
from dangliang.web.rendering import language, render

router = APIRouter()

Year = Annotated[int | None, Query(ge=1949, le=2200, description="年度 / year")]


def chosen_year(years: list[int], year: int | None) -> tuple[int, list[int]]:
    """The year asked for, or the latest with service records (this year when none); and
    the years the selector offers (newest first), including the chosen one."""
    found = year if year is not None else (years[0] if years else date.today().year)
    return found, sorted({*years, found}, reverse=True)


@router.get("/")
def overview(
    request: Request,
    app: Service,
    me: Annotated[Principal, Depends(page(*READ))],
    year: Year = None,
) -> Response:
    if me.scope is not None:  # a clerk: their own institution's page, never the county
        if not me.institution:
            raise PageError(403, "您的账户未关联机构", "your account has no institution")
        target = f"/institutions/{me.institution}" + (f"?year={year}" if year else "")
        return RedirectResponse(target, status_code=303)
    lang = language(request)
    year, years = chosen_year(app.service_years(), year)
    return render(request, "overview/index.html", year=year, years=years, **county(app, year, lang))


def county(app: Service, year: int, lang: str) -> dict[str, Any]:
    """Everything the overview shows for `year` (county-wide: admin and auditor only)."""
    figures = year_figures(app, year)
    doc = figures.doc
    recorded = recorded_advances(app, figures)
    rows = dash.county_rows(
        doc,
        app.institutions(),
        year,
        lang,
        names=app.institution_names(),
        paid=recorded.by_institution if recorded.any else None,
    )
    months = dash.monthly_equivalents(doc["institutions"])
    run_months = dash.monthly_run_advances(recorded.runs, year) if recorded.any else None
    month_rows = [
        views.MonthRow(
            f"{year}-{m:02d}",
            months["basic_medical"][m - 1],
            months["basic_public_health"][m - 1],
            None if run_months is None else run_months[m - 1],
        )
        for m in range(1, 13)
    ]
    fund = fund_figures(app, figures)
    charts = {
        "ov-equivalents": dash.equivalents_chart(rows, lang),
        "ov-components": dash.components_chart(rows, lang),
        "ov-advances": dash.advances_chart(rows, lang),
        "ov-monthly": dash.monthly_chart(months, year, lang),
        "ov-scores": dash.scores_chart(rows, lang),
    }
    if run_months is not None:
        charts["ov-monthly-advances"] = dash.monthly_advances_chart(run_months, year, lang)
    if fund.doc is not None:
        charts["ov-fund"] = dash.fund_chart(fund.doc, lang)
    return {
        "figures": figures,
        "totals": {k: dash.dec(v) for k, v in doc["totals"].items()},
        "policy": doc["policy"],
        "rows": rows,
        "total": dash.total_row(rows, lang),
        "month_rows": month_rows,
        "month_total": views.MonthRow(
            str(year),
            sum(months["basic_medical"], dash.ZERO),
            sum(months["basic_public_health"], dash.ZERO),
            None if run_months is None else sum((v for v in run_months if v), dash.ZERO),
        ),
        "recorded": recorded,
        "budgets": dash.budgets(doc),
        "fund": fund,
        "charts": charts,
        "categories": CATEGORIES,
        "components": COMPONENTS,
        "labels": dash,
        "height": max(260, 34 * len(rows) + 70),
    }
