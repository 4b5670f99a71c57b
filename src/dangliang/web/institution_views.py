"""One institution's page (机构页): its months, its top items and its staff's shares, built
from the application's JSON (pure functions, as `dashboards`).

- `monthly_rows` / `monthly_chart`: equivalents month by month, basic medical and public
  health stacked (the computation's own equivalents step, `by_month`);
- `top_items`: the items with the most equivalents in the year, each with its quantity, from
  the explanation's equivalents by item and month (`equivalents_by_item`);
- `shares_chart`: who gets what of the performance-pay pool (`distribute --json`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dangliang.policy.subsidy_records import CATEGORIES
from dangliang.web.dashboards import (
    CATEGORY_LABELS,
    ZERO,
    dec,
    eu_point,
    month_labels,
    pick,
    yuan_point,
)

TOP_ITEMS = 20


@dataclass(frozen=True)
class MonthRow:
    month: str  # 2024-03
    basic_medical: Decimal
    basic_public_health: Decimal
    advances: Decimal | None = None  # the month's approved run, when there is one

    @property
    def total(self) -> Decimal:
        return self.basic_medical + self.basic_public_health


def monthly_rows(
    entry: Mapping[str, Any], year: int, advances: Sequence[Decimal | None] | None = None
) -> list[MonthRow]:
    """Twelve months of one institution (`compute --json` row with `by_month`)."""
    by_month = entry.get("by_month", {})
    return [
        MonthRow(
            f"{year}-{m:02d}",
            dec(by_month.get("basic_medical", {}).get(str(m))),
            dec(by_month.get("basic_public_health", {}).get(str(m))),
            None if advances is None else advances[m - 1],
        )
        for m in range(1, 13)
    ]


def monthly_chart(rows: Sequence[MonthRow], year: int, lang: str) -> dict[str, Any]:
    return {
        "legend": {"top": 0},
        "grid": {"left": 8, "right": 24, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": month_labels(year, lang)},
        "yAxis": {"type": "value", "name": pick(("当量", "Equivalents"), lang)},
        "series": [
            {
                "id": c,
                "name": pick(CATEGORY_LABELS[c], lang),
                "type": "bar",
                "stack": "equivalents",
                "data": [eu_point(getattr(r, c)) for r in rows],
            }
            for c in CATEGORIES
        ],
    }


@dataclass
class ItemRow:
    code: str
    name: str
    category: str
    quantity: Decimal = ZERO
    equivalents: Decimal = ZERO  # bought categories: basic medical, compliant public health
    non_compliant: Decimal = ZERO
    records: int = 0


def top_items(
    cells: Iterable[Mapping[str, Any]], names: Mapping[str, str], limit: int = TOP_ITEMS
) -> list[ItemRow]:
    """The `limit` items with the most equivalents (ties by code), from the explanation's
    `equivalents_by_item` (one entry per item, month and compliance)."""
    items: dict[str, ItemRow] = {}
    for cell in cells:
        code = str(cell["item"])
        row = items.get(code)
        if row is None:
            row = items[code] = ItemRow(code, names.get(code, ""), str(cell["category"]))
        row.quantity += dec(cell.get("quantity"))
        row.records += int(cell.get("records") or 0)
        if cell["category"] == "basic_public_health" and not cell.get("compliant", True):
            row.non_compliant += dec(cell.get("equivalents"))
        else:
            row.equivalents += dec(cell.get("equivalents"))
    ranked = sorted(items.values(), key=lambda r: (-r.equivalents, -r.non_compliant, r.code))
    return ranked[:limit]


def shares_chart(staff: Sequence[Mapping[str, Any]], lang: str) -> dict[str, Any]:
    """Each person's performance pay (绩效工资), largest first."""
    ranked = sorted(staff, key=lambda s: (-dec(s.get("performance_pay")), s["staff_id"]))
    labels = [f"{s.get('name') or ''} {s['staff_id']}".strip() for s in ranked]
    return {
        "dl_unit": "yuan",
        "dl_keys": [s["staff_id"] for s in ranked],
        "grid": {"left": 8, "right": 24, "top": 16, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "value", "name": pick(("元", "CNY"), lang)},
        "yAxis": {"type": "category", "data": labels, "inverse": True},
        "series": [
            {
                "id": "performance_pay",
                "name": pick(("绩效工资", "Performance pay"), lang),
                "type": "bar",
                "data": [yuan_point(dec(s.get("performance_pay"))) for s in ranked],
            }
        ],
    }


def staff_rows(staff: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The people of a distribution in the order of the chart (largest share first)."""
    return sorted(staff, key=lambda s: (-dec(s.get("performance_pay")), s["staff_id"]))
