"""What the explain pages show, shaped from the application's explanations.

`Dangliang.explain`, `explain_staff`, `explain_insurance` and `records_page` return the
trace the rules recorded (rule, clause, parameters with value, date and reference, inputs,
outputs) and the equivalents by item and month; this module only arranges them for a page:
labels in two languages, inputs flattened into rows, items summed per item, records with
their equivalents (quantity × the item's value that month, as the cube counts them), a page
at a time (`Dangliang.records_page`: the totals are summed by the database, only the page's
records are read).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dangliang.application import Dangliang
from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period
from dangliang.web.guard import PageError

PAGE_SIZE = 50
EU_PLACES = Decimal("0.0001")

# The components of an institution's amount (calculation.compensation.EXPLAINABLE), in order.
COMPONENT_LABELS: dict[str, tuple[str, str]] = {
    "basic_medical": ("基本医疗", "Basic medical"),
    "basic_public_health": ("基本公卫", "Basic public health"),
    "directive_tasks": ("指令性任务", "Directive tasks"),
    "remote_adjustment": ("边缘乡镇调节补助", "Remote-township adjustment"),
    "year_end_bonus": ("年终考核奖财政部分", "Year-end bonus, finance share"),
    "settlement": ("年终清算（补差/扣回）", "Year-end settlement (top-up / claw-back)"),
}
CATEGORY_LABELS: dict[str, tuple[str, str]] = {
    "basic_medical": ("基本医疗", "Basic medical"),
    "basic_public_health": ("基本公卫", "Basic public health"),
}
FIGURE_LABELS: dict[str, tuple[str, str]] = {  # the fund's figures of a community
    "budget": ("预算", "Budget"),
    "spending": ("统筹基金支出", "Pooled-fund spending"),
    "spending_in_area": ("其中：县域内", "of which in the county"),
    "spending_out_of_area": ("其中：县域外", "of which out of the county"),
    "balance": ("结余（负数为超支）", "Balance (negative: overspend)"),
    "advance": ("预拨", "Advance"),
    "surplus": ("结余", "Surplus"),
    "retained_direct": ("结余直接留用", "Surplus kept directly"),
    "retained_assessed": ("结余按考核留用", "Surplus kept by assessment"),
    "returned_to_fund": ("结余返还基金", "Surplus returned to the fund"),
    "overspend": ("超支", "Overspend"),
    "overspend_base": ("超支分担基数", "Overspend sharing base"),
    "community_bears": ("医共体承担", "Borne by the community"),
    "fund_bears": ("基金承担", "Borne by the fund"),
    "final": ("最终支付", "Final payment"),
}
SHARE_LABELS: dict[str, tuple[str, str]] = {  # a person's performance pay
    "base": ("基础性绩效", "Base part"),
    "reward": ("奖励性绩效", "Reward part"),
    "surplus": ("结余再分配", "Surplus redistributed"),
    "floor_top_up": ("保底补足", "Floor top-up"),
    "floor_contribution": ("保底分摊", "Floor contribution"),
    "performance_pay": ("绩效工资", "Performance pay"),
    "year_end_bonus": ("年终考核奖", "Year-end bonus"),
    "year_end_bonus_finance": ("其中：财政保障", "of which paid by finance"),
    "total": ("合计", "Total"),
}


def compensation_period(text: str) -> Period:
    """`2024` or `2024-03` (already matched by the query's pattern), else a 422 page."""
    year, _, month = text.partition("-")
    if not 1949 <= int(year) <= 2200:
        raise PageError(422, f"年份超出范围：{year}", f"year out of range (1949–2200): {year}")
    try:
        return Period.parse(year=None if month else int(year), month=text if month else None)
    except (DomainError, ValueError):
        raise PageError(422, f"期间无效：{text}", f"not a period: {text}") from None


def fund_period(text: str) -> Period:
    """A fund period: `2024`, `2024-Q1` or `2024-03` (already matched), else a 422 page."""
    if not 1949 <= int(text[:4]) <= 2200:
        raise PageError(422, f"年份超出范围：{text[:4]}", f"year out of range: {text[:4]}")
    try:
        return Period.quarter_of(text) if "Q" in text else Period.of(text)
    except (DomainError, ValueError):
        raise PageError(422, f"期间无效：{text}", f"not a period: {text}") from None


def bilingual(text: str) -> tuple[str, str]:
    """`"中文 / English"` (how the rules title their steps and notes) as a pair."""
    zh, sep, en = str(text).partition(" / ")
    return (zh, en) if sep else (zh, zh)


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested inputs or outputs as (key path, text) rows; a list of scalars stays one row."""
    if isinstance(value, dict):
        if not value:
            return [(prefix, "—")] if prefix else []
        rows: list[tuple[str, str]] = []
        for key, inner in value.items():
            rows += flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return [(prefix, ", ".join(show(v) for v in value) or "—")]
        rows = []
        for i, inner in enumerate(value):
            rows += flatten(inner, f"{prefix}[{i + 1}]")
        return rows
    return [(prefix, show(value))]


def show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "是 / yes" if value else "否 / no"
    return str(value)


def value_text(value: Any) -> str:
    """A parameter's value as the policy pages write it: `null`, `true`, `12.5`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(", ".join(f"{k} {v}" for k, v in row.items()) for row in value)
    return str(value)


def steps_view(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rule steps as a page shows them (titles and notes split by language)."""
    return [
        {
            "rule": s["rule"],
            "title": bilingual(s.get("title", s["rule"])),
            "step": s.get("domain_step"),
            "clause": s.get("clause", ""),
            "parameters": [
                {**p, "value": value_text(p.get("value"))} for p in s.get("parameters", [])
            ],
            "inputs": flatten(s.get("inputs") or {}),
            "outputs": flatten(s.get("outputs") or {}),
            "staff": flatten(s.get("staff") or {}),
            "notes": [bilingual(n) for n in s.get("notes", [])],
        }
        for s in steps
    ]


@dataclass
class ItemSummary:
    """One catalogue item's equivalents over the period's months (from the explanation)."""

    item: str
    category: str
    name: str = ""
    quantity: Decimal = Decimal(0)
    equivalents: Decimal = Decimal(0)
    non_compliant: Decimal = Decimal(0)
    records: int = 0
    months: list[dict[str, Any]] = field(default_factory=list)


def items_view(rows: list[dict[str, Any]], names: dict[str, str]) -> list[ItemSummary]:
    """`equivalents_by_item` (one row per item, month and compliance) summed per item."""
    found: dict[str, ItemSummary] = {}
    for r in rows:
        summary = found.setdefault(
            r["item"], ItemSummary(r["item"], r["category"], names.get(r["item"], ""))
        )
        summary.quantity += Decimal(r["quantity"])
        summary.equivalents += Decimal(r["equivalents"])
        if not r.get("compliant", True):
            summary.non_compliant += Decimal(r["equivalents"])
        summary.records += int(r.get("records", 0))
        summary.months.append(r)
    return sorted(found.values(), key=lambda s: (s.category, s.item))


def exact_eu(value: Decimal) -> Decimal:
    """Equivalents at 4 places when exact (as the cube shows them), else every digit."""
    four = value.quantize(EU_PLACES)
    return four if four == value else value.normalize()


@dataclass
class RecordsPage:
    institution: str
    period: str
    item: str | None
    position: int
    page: int
    pages: int
    count: int
    quantity: Decimal
    equivalents: Decimal
    rows: list[dict[str, Any]]


def records_page(
    app: Dangliang,
    institution: str,
    period: Period,
    *,
    item: str | None,
    page: int,
    position: int | None,
) -> RecordsPage:
    """One page (50 records) of the service records behind an institution's equivalents,
    each with its equivalents (quantity × the item's value in force that month), and the
    totals of all of them (the application counts and sums them without listing them)."""
    found = app.records_page(
        institution,
        period.label,
        item=item,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
        position=position,
    )
    count = int(found["count"])
    pages = max(1, math.ceil(count / PAGE_SIZE))
    if page > pages:
        raise PageError(
            404, f"没有第 {page} 页（共 {pages} 页）", f"no page {page} (there are {pages})"
        )
    staff_names = app.registry().staff_names
    rows = []
    for r in found["records"]:
        value = Decimal(r.pop("value_e4")).scaleb(-4)
        rows.append(
            {
                **r,
                "staff_name": staff_names.get(r["staff_id"] or "", ""),
                "equivalent_value": str(value),
                "equivalents": str(exact_eu(Decimal(r["quantity"]) * value)),
            }
        )
    return RecordsPage(
        institution=institution,
        period=period.label,
        item=item,
        position=int(found["position"]),
        page=page,
        pages=pages,
        count=count,
        quantity=found["quantity"],
        equivalents=exact_eu(found["equivalents"]),
        rows=rows,
    )
