"""Institutions (机构): GET /institutions, GET /institutions/{code}.

- `/institutions`: every registered institution (code, name, kind, the centre it belongs
  to), a clerk's own and its village clinics only, each opening its page;
- `/institutions/{code}?year=`: one institution's year — equivalents month by month by
  category (and the advances its approved monthly runs paid), the items with the most
  equivalents (quantity and equivalents), its amounts by component (each opening its
  explanation), its staff's performance pay (the pool and who gets what) and its village
  clinics. A clerk asking for another institution gets 403.

The figures come from the year's computation (`county_reads.year_figures`: the application's,
kept per log position and shared with the overview), the top items from the application's
explanation of this institution (the cube's cells of one institution), the shares from
`app.distribute` for this institution — all at one log position.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from dangliang.application.accounts import Principal
from dangliang.policy.subsidy_records import CATEGORIES, COMPONENTS
from dangliang.web import dashboards as dash
from dangliang.web import institution_views as views
from dangliang.web.county_reads import (
    YearFigures,
    items_of,
    pay_of,
    recorded_advances,
    year_figures,
)
from dangliang.web.guard import READ, PageError, Service, page, require_institution
from dangliang.web.overview_pages import Year, chosen_year
from dangliang.web.rendering import language, render

router = APIRouter()

Code = Annotated[str, Path(max_length=64, description="机构编码 / institution code")]
POSTS = {
    "clinical": ("临床", "Clinical"),
    "nursing": ("护理", "Nursing"),
    "public_health": ("公共卫生", "Public health"),
    "medical_tech": ("医技", "Medical technology"),
    "pharmacy": ("药剂", "Pharmacy"),
    "admin": ("行政", "Administration"),
    "it": ("信息", "IT"),
    "village_doctor": ("乡村医生", "Village doctor"),
}


@router.get("/institutions")
def institution_list(
    request: Request, app: Service, me: Annotated[Principal, Depends(page(*READ))]
) -> Response:
    names = app.institution_names()
    rows = [
        {
            "code": code,
            "name": names.get(code, ""),
            "kind": kind,
            "parent": parent,
            "parent_name": names.get(parent, "") if parent else "",
        }
        for code, (kind, parent) in sorted(app.institutions().items())
        if me.may_see(code)
    ]
    return render(request, "institutions/list.html", rows=rows, kinds=dash.KIND_LABELS)


@router.get("/institutions/{code}")
def institution_page(
    request: Request,
    app: Service,
    me: Annotated[Principal, Depends(page(*READ))],
    code: Code,
    year: Year = None,
) -> Response:
    require_institution(me, code)
    institutions = app.institutions()
    if code not in institutions:
        raise PageError(404, f"未登记的机构：{code}", f"unknown institution: {code}")
    lang = language(request)
    year, years = chosen_year(app.service_years(), year)
    names = app.institution_names()
    kind, parent = institutions[code]
    figures = year_figures(app, year)
    clinics = sorted(c for c, (_, p) in institutions.items() if p == code)
    return render(
        request,
        "institutions/detail.html",
        code=code,
        name=names.get(code, ""),
        kind=kind,
        kinds=dash.KIND_LABELS,
        parent=parent,
        parent_name=names.get(parent, "") if parent else "",
        year=year,
        years=years,
        position=figures.position,
        categories=CATEGORIES,
        components=COMPONENTS,
        labels=dash,
        **year_of(app, figures, code, names, lang),
        **pay_view(app, figures, code, lang),
        **clinics_of(figures, clinics, names, lang),
    )


def year_of(
    app: Service, figures: YearFigures, code: str, names: dict[str, str], lang: str
) -> dict[str, Any]:
    """The institution's figures, months and top items of the year."""
    year = figures.year
    entry = figures.institution(code)
    if entry is None:  # registered after the log position, or nothing of the year at all
        return {"row": None, "charts": {}}
    recorded = recorded_advances(app, figures)
    paid = recorded.by_institution if recorded.any else None
    run_months = dash.monthly_run_advances(recorded.runs, year, [code]) if recorded.any else None
    months = views.monthly_rows(entry, year, run_months)
    return {
        "row": dash.institution_row(entry, year, name=names.get(code), paid=paid),
        "recorded": recorded,
        "months": months,
        "month_total": views.MonthRow(
            str(year),
            sum((m.basic_medical for m in months), dash.ZERO),
            sum((m.basic_public_health for m in months), dash.ZERO),
            None if run_months is None else sum((v for v in run_months if v), dash.ZERO),
        ),
        "top_items": views.top_items(items_of(app, figures, code), app.item_names()),
        "charts": {"inst-monthly": views.monthly_chart(months, year, lang)},
        "warnings": entry.get("warnings", []),
    }


def pay_view(app: Service, figures: YearFigures, code: str, lang: str) -> dict[str, Any]:
    """The institution's performance-pay distribution of the year, if it has a pool."""
    found = pay_of(app, figures, code)
    if found.doc is None:
        return {"pay": None, "pay_notes": found.notes, "posts": POSTS}
    staff = found.doc["staff"]
    return {
        "pay": found.doc,
        "pay_notes": [],
        "staff": views.staff_rows(staff),
        "shares_chart": views.shares_chart(staff, lang),
        "shares_height": max(200, 24 * len(staff) + 60),
        "posts": POSTS,
    }


def clinics_of(
    figures: YearFigures, clinics: list[str], names: dict[str, str], lang: str
) -> dict[str, Any]:
    rows = [
        dash.institution_row(entry, figures.year, name=names.get(c))
        for c in clinics
        if (entry := figures.institution(c)) is not None
    ]
    return {"clinics": rows, "clinics_total": dash.total_row(rows, lang) if rows else None}
