"""The overview's figures and charts (县级概览), built from the application's JSON.

Pure functions: they read `compute --json` (with each institution's `by_month`, see
`county_reads.YearFigures`), the fund's figures and the recorded runs, and return rows for the
tables and ECharts options for the charts — nothing else, so they are tested without a
database. Money stays `Decimal` in the rows (the tables write it exactly through the `money`
filter); only the chart options carry numbers as floats (display only, rounded to the fen
or to four places of equivalents). Every chart series has an `id` (`basic_medical`,
`total`, …) that the tests and the browser tests read.

A row is one centre (乡镇卫生院 or 社区卫生服务中心) on its own — the same figures as its
page and its explanation — and the county's village clinics together in one more row, so the
rows add up to the county.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dangliang.application.workbench_queries import RunRecord
from dangliang.policy.subsidy_records import CATEGORIES, COMPONENTS, COMPONENTS_ZH
from dangliang.web.formatting import decimal_of, period_label
from dangliang.web.links import institution_href

Pair = tuple[str, str]
ZERO = Decimal(0)
VILLAGES = "villages"  # the key of the village clinics' row
FEN = Decimal("0.01")
EU = Decimal("0.0001")

CATEGORY_LABELS: dict[str, Pair] = {
    "basic_medical": ("基本医疗", "Basic medical"),
    "basic_public_health": ("基本公共卫生", "Basic public health"),
}
NON_COMPLIANT: Pair = ("公卫未达标（不购买）", "Public health below standard (not bought)")
COMPONENTS_EN = {
    "basic_medical": "Basic medical",
    "basic_public_health": "Basic public health",
    "directive_tasks": "Directive tasks",
    "remote_adjustment": "Remote-township adjustment",
    "year_end_bonus": "Year-end bonus (finance share)",
}
COMPONENT_LABELS: dict[str, Pair] = {c: (COMPONENTS_ZH[c], COMPONENTS_EN[c]) for c in COMPONENTS}
KIND_LABELS: dict[str, Pair] = {
    "township_health_centre": ("乡镇卫生院", "Township health centre"),
    "community_health_centre": ("社区卫生服务中心", "Community health centre"),
    "village_clinic": ("村卫生室", "Village clinic"),
}
TOTAL: Pair = ("合计", "Total")


def pick(pair: Pair, lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def dec(value: Any) -> Decimal:
    """A decimal string (or None) from the JSON as a Decimal (None → 0)."""
    found = decimal_of(value)
    return ZERO if found is None else found


def yuan_point(value: Decimal) -> float:
    """Money for a chart (display only): rounded to the fen."""
    return float(value.quantize(FEN))


def eu_point(value: Decimal) -> float:
    """Equivalents for a chart (display only): four places."""
    return float(value.quantize(EU))


# ---- rows -------------------------------------------------------------------------------------


@dataclass
class Row:
    """One institution's year (or the village clinics' together), from `compute --json`."""

    key: str  # the institution's code, or VILLAGES
    label: str
    href: str | None  # its page
    members: int = 1
    basic_medical: Decimal = ZERO
    basic_public_health: Decimal = ZERO
    non_compliant: Decimal = ZERO
    components: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(COMPONENTS, ZERO))
    total: Decimal = ZERO
    advances: Decimal = ZERO
    settlement: Decimal = ZERO
    advances_paid: Decimal | None = None  # from approved monthly runs, when there are any
    score: Decimal | None = None
    coefficient: Decimal | None = None

    @property
    def equivalents(self) -> Decimal:
        """Basic medical and (compliant) public health."""
        return self.basic_medical + self.basic_public_health

    @property
    def is_institution(self) -> bool:
        return self.key != VILLAGES

    def add(self, other: Row) -> None:
        self.members += other.members
        self.basic_medical += other.basic_medical
        self.basic_public_health += other.basic_public_health
        self.non_compliant += other.non_compliant
        for c in COMPONENTS:
            self.components[c] += other.components[c]
        self.total += other.total
        self.advances += other.advances
        self.settlement += other.settlement
        if other.advances_paid is not None:
            self.advances_paid = (self.advances_paid or ZERO) + other.advances_paid


def institution_row(
    entry: Mapping[str, Any],
    year: int,
    *,
    name: str | None = None,
    paid: Mapping[str, Any] | None = None,
) -> Row:
    """One institution of `compute --json` as a row; `paid`: advances paid per code."""
    code = str(entry["code"])
    eq = entry.get("equivalents", {})
    score = entry.get("score")
    return Row(
        key=code,
        label=f"{code} {name or entry.get('name') or ''}".strip(),
        href=institution_href(code, year),
        basic_medical=dec(eq.get("basic_medical", {}).get("actual")),
        basic_public_health=dec(eq.get("basic_public_health", {}).get("actual")),
        non_compliant=dec(eq.get("basic_public_health", {}).get("non_compliant")),
        components={c: dec(entry.get("components", {}).get(c)) for c in COMPONENTS},
        total=dec(entry.get("total")),
        advances=dec(entry.get("advances")),
        settlement=dec(entry.get("settlement")),
        advances_paid=None if paid is None else dec(paid.get(code)),
        score=None if score is None else dec(score),
        coefficient=None if entry.get("coefficient") is None else dec(entry["coefficient"]),
    )


def county_rows(
    doc: Mapping[str, Any],
    institutions: Mapping[str, tuple[str, str | None]],
    year: int,
    lang: str,
    *,
    names: Mapping[str, str] | None = None,
    paid: Mapping[str, Any] | None = None,
) -> list[Row]:
    """A row per centre (by code), then one for all village clinics together (if any).
    `institutions`: code → (kind, parent code), as `app.institutions()`."""
    names = names or {}
    centres: list[Row] = []
    villages: Row | None = None
    for entry in sorted(doc["institutions"], key=lambda r: r["code"]):
        code = entry["code"]
        row = institution_row(entry, year, name=names.get(code), paid=paid)
        parent = institutions.get(code, ("", None))[1]
        if parent is None:
            centres.append(row)
            continue
        if villages is None:
            villages = Row(VILLAGES, "", None, members=0, advances_paid=None)
        villages.add(row)
    if villages is not None:
        villages.label = (
            f"Village clinics ({villages.members})"
            if lang == "en"
            else f"村卫生室（{villages.members} 家合计）"
        )
        centres.append(villages)
    return centres


def total_row(rows: Iterable[Row], lang: str) -> Row:
    total = Row("total", pick(TOTAL, lang), None, members=0)
    for r in rows:
        total.add(r)
    return total


# ---- headline figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    category: str
    budget: Decimal
    reserve: Decimal
    used: Decimal  # the category's amounts of the year

    @property
    def share(self) -> Decimal | None:
        return self.used / self.budget if self.budget else None


def budgets(doc: Mapping[str, Any]) -> list[Budget]:
    """The year's purchase budget per category, when the policy prices by point value
    (budget ÷ county equivalents, docs/compensation.md step 4); none under fixed prices."""
    step = next((s for s in doc.get("county_steps", []) if s.get("rule") == "point_value"), None)
    if step is None:
        return []
    out = step.get("outputs", {})
    totals = doc.get("totals", {})
    return [
        Budget(c, dec(out.get(f"{c}_budget")), dec(out.get(f"{c}_reserve")), dec(totals.get(c)))
        for c in CATEGORIES
        if out.get(f"{c}_budget") is not None
    ]


# ---- charts per row ---------------------------------------------------------------------------


def _bars(rows: Sequence[Row], axis_name: str, *, horizontal: bool = True) -> dict[str, Any]:
    labels = [r.label for r in rows]
    category = {"type": "category", "data": labels}
    value = {"type": "value", "name": axis_name}
    option: dict[str, Any] = {
        "legend": {"top": 0},
        "grid": {"left": 8, "right": 24, "top": 36, "bottom": 8, "containLabel": True},
        "dl_links": {r.label: r.href for r in rows if r.href},
        "dl_keys": [r.key for r in rows],
    }
    if horizontal:
        option.update(xAxis=value, yAxis={**category, "inverse": True})
    else:
        option.update(xAxis={**category, "axisLabel": {"interval": 0, "rotate": 30}}, yAxis=value)
    return option


def _series(
    key: str, name: str, data: list[float | None], *, stack: str | None = None, kind: str = "bar"
) -> dict[str, Any]:
    found: dict[str, Any] = {"id": key, "name": name, "type": kind, "data": data}
    if stack:
        found["stack"] = stack
    return found


def equivalents_chart(rows: Sequence[Row], lang: str) -> dict[str, Any]:
    """Equivalents per centre, basic medical and public health stacked."""
    option = _bars(rows, pick(("当量", "Equivalents"), lang))
    option["series"] = [
        _series(
            c,
            pick(CATEGORY_LABELS[c], lang),
            [eu_point(getattr(r, c)) for r in rows],
            stack="equivalents",
        )
        for c in CATEGORIES
    ]
    return option


def components_chart(rows: Sequence[Row], lang: str) -> dict[str, Any]:
    """The year's amount per centre, by component (stacked)."""
    option = _bars(rows, pick(("元", "CNY"), lang))
    option["dl_unit"] = "yuan"
    option["series"] = [
        _series(
            c,
            pick(COMPONENT_LABELS[c], lang),
            [yuan_point(r.components[c]) for r in rows],
            stack="amount",
        )
        for c in COMPONENTS
    ]
    return option


def advances_chart(rows: Sequence[Row], lang: str) -> dict[str, Any]:
    """Advances and the settlement per centre, side by side (and the advances actually
    paid by approved monthly runs, when there are any)."""
    option = _bars(rows, pick(("元", "CNY"), lang))
    option["dl_unit"] = "yuan"
    series = [
        _series(
            "advances",
            pick(("预拨（按规则计算）", "Advances (computed)"), lang),
            [yuan_point(r.advances) for r in rows],
        )
    ]
    if any(r.advances_paid is not None for r in rows):
        series.append(
            _series(
                "advances_paid",
                pick(("已拨付预拨（已批准批次）", "Advances paid (approved runs)"), lang),
                [yuan_point(r.advances_paid or ZERO) for r in rows],
            )
        )
    series.append(
        _series(
            "settlement",
            pick(("清算差额", "Settlement"), lang),
            [yuan_point(r.settlement) for r in rows],
        )
    )
    option["series"] = series
    return option


def scores_chart(rows: Sequence[Row], lang: str) -> dict[str, Any]:
    """Each centre's assessment score (综合考核得分); centres without one are left out."""
    scored = [r for r in rows if r.is_institution and r.score is not None]
    option = _bars(scored, pick(("得分", "Score"), lang), horizontal=False)
    option["yAxis"].update(min=0, max=100)
    option["series"] = [
        _series(
            "score",
            pick(("综合考核得分", "Assessment score"), lang),
            [float(r.score or ZERO) for r in scored],
        )
    ]
    return option


# ---- month by month ---------------------------------------------------------------------------


def monthly_equivalents(
    entries: Iterable[Mapping[str, Any]],
) -> dict[str, list[Decimal]]:
    """Equivalents per category and month (12 values each) summed over `entries` (rows of
    `compute --json` with `by_month`); their sum is the rows' `actual` equivalents."""
    out = {c: [ZERO] * 12 for c in CATEGORIES}
    for entry in entries:
        by_month = entry.get("by_month", {})
        for c in CATEGORIES:
            for month, value in by_month.get(c, {}).items():
                out[c][int(month) - 1] += dec(value)
    return out


def month_labels(year: int, lang: str) -> list[str]:
    return [period_label(f"{year}-{m:02d}", lang) for m in range(1, 13)]


def monthly_chart(months: Mapping[str, list[Decimal]], year: int, lang: str) -> dict[str, Any]:
    """A line per category and the total, month by month."""
    total = [sum(parts, ZERO) for parts in zip(*(months[c] for c in CATEGORIES), strict=True)]
    return {
        "legend": {"top": 0},
        "grid": {"left": 8, "right": 24, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": month_labels(year, lang)},
        "yAxis": {"type": "value", "name": pick(("当量", "Equivalents"), lang)},
        "series": [
            *(
                _series(
                    c, pick(CATEGORY_LABELS[c], lang), [eu_point(v) for v in months[c]], kind="line"
                )
                for c in CATEGORIES
            ),
            _series("total", pick(TOTAL, lang), [eu_point(v) for v in total], kind="line"),
        ],
    }


def monthly_run_advances(
    runs: Iterable[RunRecord], year: int, codes: Iterable[str] | None = None
) -> list[Decimal | None]:
    """The advances of each month's approved (or paid) run, summed over `codes` (all when
    None); None for a month without one."""
    wanted = None if codes is None else set(codes)
    out: list[Decimal | None] = [None] * 12
    for run in runs:
        if not run.closes_period or len(run.period) != 7 or run.period[:4] != str(year):
            continue
        month = int(run.period[5:7])
        out[month - 1] = sum(
            (
                dec(row.get("advances"))
                for row in run.results.get("institutions", [])
                if wanted is None or row.get("code") in wanted
            ),
            ZERO,
        )
    return out


def monthly_advances_chart(
    advances: Sequence[Decimal | None], year: int, lang: str
) -> dict[str, Any]:
    return {
        "dl_unit": "yuan",
        "legend": {"top": 0},
        "grid": {"left": 8, "right": 24, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": month_labels(year, lang)},
        "yAxis": {"type": "value", "name": pick(("元", "CNY"), lang)},
        "series": [
            _series(
                "advances",
                pick(("月度预拨（已批准批次）", "Monthly advances (approved runs)"), lang),
                [None if v is None else yuan_point(v) for v in advances],
            )
        ],
    }


# ---- the insurance fund -----------------------------------------------------------------------


def fund_chart(doc: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """Budget and spending per medical community (医共体), side by side."""
    communities = doc.get("communities", [])
    labels = [f"{c['code']} {c.get('name', '')}".strip() for c in communities]
    return {
        "dl_unit": "yuan",
        "dl_keys": [c["code"] for c in communities],
        "legend": {"top": 0},
        "grid": {"left": 8, "right": 24, "top": 36, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": {"type": "value", "name": pick(("元", "CNY"), lang)},
        "series": [
            _series(
                key,
                pick(label, lang),
                [yuan_point(dec(c.get("figures", {}).get(key))) for c in communities],
            )
            for key, label in (("budget", ("预算", "Budget")), ("spending", ("支出", "Spending")))
        ],
    }
