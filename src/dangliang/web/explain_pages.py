"""Explain (解释): from a yuan down to its components, parameters, items and records.

- `GET /explain/institution/{code}?period=2024|2024-03[&component=NAME][&position=N]`:
  without a component, the institution's amount and its components (each links one level
  down); with one, the rule steps behind it (clause; parameters with value, effective date
  and the document and clause they come from; inputs and outputs) and the equivalents by
  item and month, each item linking to its records. Every link down carries the log
  position the explanation was computed at, so the whole walk reads one state of the log.
- `GET /explain/institution/{code}/records?period=…[&item=ITEM][&page=N][&position=N]`: the
  service records (HIS source ids) behind the equivalents, 50 a page, each with its staff,
  month, quantity and equivalents.
- `GET /explain/staff/{staff_id}?period=2024`: a person's performance pay, step by step.
- `GET /explain/community/{code}?period=2024|2024-Q1|2024-03`: the insurance fund's figures
  of a medical community (医共体), step by step.

A clerk sees their institution and its village clinics, and their own community, only
(403 otherwise, on the records pages too), as in the API.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from dangliang.api.models import PERIOD_PATTERN
from dangliang.api.routes_insurance import FUND_PERIOD, own_communities
from dangliang.application.accounts import Principal
from dangliang.calculation.compensation import EXPLAINABLE
from dangliang.web import explain_views as views
from dangliang.web.guard import READ, PageError, Service, page, require_institution
from dangliang.web.links import explain_href, records_href
from dangliang.web.rendering import language, render

router = APIRouter()

Reader = Annotated[Principal, Depends(page(*READ))]
Code = Annotated[str, Path(max_length=64)]
CompensationPeriod = Annotated[str, Query(pattern=PERIOD_PATTERN)]
FundPeriodQuery = Annotated[str, Query(pattern=FUND_PERIOD)]
Component = Annotated[str | None, Query(pattern="^(" + "|".join(EXPLAINABLE) + ")$")]
Position = Annotated[int | None, Query(ge=0, le=2**62)]
CATEGORIES = ("basic_medical", "basic_public_health")


@router.get("/explain/institution/{code}")
def institution_page(
    request: Request,
    app: Service,
    me: Reader,
    code: Code,
    period: CompensationPeriod,
    component: Component = None,
    position: Position = None,
) -> Response:
    require_institution(me, code)
    found = views.compensation_period(period)
    if component == "settlement" and not found.is_year:
        raise PageError(
            422,
            "年终清算只按年度解释，请选择年份",
            "the settlement is explained for a year: choose a year",
        )
    doc = app.explain(code, found, component=component, position=position)
    at = doc["position"]
    result = doc["result"]
    components = [
        {
            "name": name,
            "label": views.COMPONENT_LABELS[name],
            "amount": amount,
            "href": explain_href(code, found.label, name, position=at),
        }
        for name, amount in result["components"].items()
    ]
    if found.is_year:
        components.append(
            {
                "name": "settlement",
                "label": views.COMPONENT_LABELS["settlement"],
                "amount": result["settlement"],
                "href": explain_href(code, found.label, "settlement", position=at),
            }
        )
    in_components = [c for c in components if c["name"] != "settlement"]
    english = language(request) == "en"
    names = [c["label"][1 if english else 0] for c in in_components]
    option = {
        "dl_unit": "yuan",
        "dl_links": {n: c["href"] for n, c in zip(names, in_components, strict=True)},
        "grid": {"left": 10, "right": 20, "top": 10, "bottom": 30, "containLabel": True},
        "xAxis": {"type": "value"},
        "yAxis": {"type": "category", "data": names},
        "series": [
            {
                "type": "bar",
                "name": "amount",
                "data": [round(float(Decimal(c["amount"])), 2) for c in in_components],
            }
        ],
    }
    items = (
        views.items_view(doc["equivalents_by_item"], app.item_names())
        if component in CATEGORIES
        else []
    )
    return render(
        request,
        "explain/institution.html",
        code=code,
        doc=doc,
        result=result,
        period=found,
        component=component,
        component_label=views.COMPONENT_LABELS.get(component or ""),
        components=components,
        components_option=option,
        steps=views.steps_view(doc["steps"]),
        item_rows=items,
        overview_href=explain_href(code, found.label, position=at),
        records_href=lambda period=None, **q: records_href(
            code, period or found.label, position=at, **q
        ),
    )


@router.get("/explain/institution/{code}/records")
def records_page(
    request: Request,
    app: Service,
    me: Reader,
    code: Code,
    period: CompensationPeriod,
    item: Annotated[str | None, Query(max_length=64)] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    position: Position = None,
) -> Response:
    require_institution(me, code)
    found = views.compensation_period(period)
    listing = views.records_page(
        app, code, found, item=item or None, page=page_number, position=position
    )
    year = str(found.year)
    category = app.registry().item_categories.get(item) if item else None

    def here(number: int) -> str:
        return records_href(code, found.label, item=item, page=number, position=listing.position)

    return render(
        request,
        "explain/records.html",
        code=code,
        period=found,
        listing=listing,
        item=item,
        item_name=app.item_names().get(item, "") if item else "",
        category=category,
        category_label=views.CATEGORY_LABELS.get(category or ""),
        overview_href=explain_href(code, year, position=listing.position),
        component_href=explain_href(code, year, category, position=listing.position)
        if category
        else None,
        page_href=here,
    )


@router.get("/explain/staff/{staff_id}")
def staff_page(
    request: Request,
    app: Service,
    me: Reader,
    staff_id: Code,
    period: CompensationPeriod,
    position: Position = None,
) -> Response:
    found = views.compensation_period(period)
    doc = app.explain_staff(staff_id, found, position=position)
    parts = [p for p in doc["institutions"] if me.may_see(p["institution"])]
    if not parts:
        require_institution(me, doc["institutions"][0]["institution"])
    shown = [
        {
            "institution": p["institution"],
            "share": p["share"],
            "figures": [
                (key, label, p["share"].get(key))
                for key, label in views.SHARE_LABELS.items()
                if p["share"].get(key) is not None
            ],
            "outside": views.flatten(p["share"].get("outside") or {}),
            "steps": views.steps_view(p["steps"]),
            "item_rows": p["equivalents_by_item"],
            "explain_href": explain_href(
                p["institution"], str(found.year), position=doc["position"]
            ),
        }
        for p in parts
    ]
    return render(
        request, "explain/staff.html", doc=doc, period=found, parts=shown, staff_id=staff_id
    )


@router.get("/explain/community/{code}")
def community_page(
    request: Request,
    app: Service,
    me: Reader,
    code: Code,
    period: FundPeriodQuery,
    position: Position = None,
) -> Response:
    own = own_communities(app, me)
    if own is not None and code not in own:
        raise PageError(
            403,
            "机构填报员只能查看本机构所属医共体",
            f"a clerk may only see their own medical community, not {code}",
        )
    found = views.fund_period(period)
    doc = app.explain_insurance(code, found, position=position)
    steps = doc["steps"]
    if me.scope is not None:  # the fund's county-wide steps are not a clerk's
        steps = [s for s in steps if not s["rule"].startswith("fund")]
    spending = doc.get("spending_by_month") or {}
    months = sorted(set(doc.get("enrolled_by_month") or {}) | set(spending))
    english = language(request) == "en"
    option = {
        "dl_unit": "yuan",
        "legend": {},
        "grid": {"left": 60, "right": 20, "top": 40, "bottom": 30, "containLabel": True},
        "xAxis": {"type": "category", "data": months},
        "yAxis": {"type": "value"},
        "series": [
            {
                "type": "bar",
                "stack": "spending",
                "name": name,
                "data": [
                    round(float(Decimal(spending.get(m, {}).get(key, "0"))), 2) for m in months
                ],
            }
            for key, name in (
                ("in_area", "in the county" if english else "县域内"),
                ("out_of_area", "out of the county" if english else "县域外"),
            )
        ],
    }
    enrolment_keys = sorted({k for v in (doc.get("enrolled_by_month") or {}).values() for k in v})
    return render(
        request,
        "explain/community.html",
        code=code,
        doc=doc,
        period=found,
        figures=[
            (key, views.FIGURE_LABELS.get(key, (key, key)), value)
            for key, value in (doc.get("figures") or {}).items()
        ],
        steps=views.steps_view(steps),
        months=months,
        spending=spending,
        enrolment_keys=enrolment_keys,
        allocation=views.flatten(doc.get("allocation") or []),
        spending_option=option,
    )
