"""The reads behind the overview and the institution pages (概览、机构页的数据).

Every figure of those pages comes from the application, all at one log position: the year's
computation (`app.compute`), the fund's (`app.compute_insurance`), an institution's
explanation (`app.explain`, for its equivalents by item) and performance pay
(`app.distribute`), the recorded runs (`app.payout_runs`). The application keeps its
computations per position (`application.computation_cache`); this module keeps none.

What it does keep is a small memo of the *views* it derives from the application's kept
year computation, and only for as long as the application keeps that computation: the
year's JSON with each institution's months, the recorded runs' advances, the fund's figures
and the equivalents by item of the last few institutions opened. Why: the application's
results are cheap to ask for again (a look-up), but turning them into a page's figures is
not — on the 1,000,000-record demo county, the JSON of 139 institutions takes ~5 ms, the
year's recorded advances ~35 ms (every run's recorded results decoded and summed), the
fund's year ~15 ms, an institution's items ~20 ms (a cube read) — so without it the overview
and an institution's page took 90–110 ms instead of 25–35 ms (benchmarks/web_pages.py).
The memo is keyed by the identity of the computation `app.compute` returns: when the log
moves on, or the application rebuilds, evicts or declines to keep it, `app.compute` returns
another object and everything derived from the old one is dropped. One entry per year, for
the last few years asked.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dangliang.application import Dangliang
from dangliang.application.workbench_queries import RunRecord
from dangliang.calculation import compensation as comp
from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period
from dangliang.payouts.paid_periods import advances_paid
from dangliang.policy.subsidy_records import CATEGORIES
from dangliang.policy.trace import to_json

LEDGER = "compensation"  # institution compensation runs (not the fund's, not performance pay)
YEARS_KEPT = 4  # years whose figures are remembered per application (the latest asked)
ITEMS_KEPT = 32  # institutions whose equivalents by item are remembered per year
T = TypeVar("T")

_lock = threading.Lock()
_years: weakref.WeakKeyDictionary[Dangliang, dict[int, YearFigures]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class YearFigures:
    """The year's computation (the application's kept one) and its JSON (`compute --json`),
    each institution with its equivalents by month (`by_month`: category → month →
    equivalents, from the computation's own equivalents step), and the views derived from
    them since (`derived`). Shared between requests: read it, never change it."""

    year: int
    position: int
    computation: comp.Computation
    doc: dict[str, Any]
    derived: dict[tuple[str, ...], Any] = field(default_factory=dict, repr=False)

    def institution(self, code: str) -> dict[str, Any] | None:
        return next((r for r in self.doc["institutions"] if r["code"] == code), None)

    def view(self, key: tuple[str, ...], make: Callable[[], T]) -> T:
        """`make()` once for these figures (two first requests may both make it, alike)."""
        with _lock:
            if key in self.derived:
                return self.derived[key]  # type: ignore[no-any-return]
        made = make()
        with _lock:
            self.derived[key] = made
            items = [k for k in self.derived if k[0] == "items"]
            for old in items[: max(0, len(items) - ITEMS_KEPT)]:
                del self.derived[old]
        return made


def year_figures(app: Dangliang, year: int) -> YearFigures:
    """The year's settlement computation as the log stands now (caught up by `compute`)."""
    computation = app.compute(Period(year))
    with _lock:
        found = _years.setdefault(app, {}).get(year)
    if found is not None and found.computation is computation:
        return found
    doc = computation.as_json()
    for row in doc["institutions"]:
        row["by_month"] = _by_month(computation, row["code"])
    figures = YearFigures(year, computation.position, computation, doc)
    with _lock:
        kept = _years[app]
        kept.pop(year, None)
        kept[year] = figures
        for old in list(kept)[: max(0, len(kept) - YEARS_KEPT)]:
            del kept[old]
    return figures


def _by_month(computation: comp.Computation, code: str) -> dict[str, dict[str, str]]:
    result = computation.result.institutions[code]
    step = next((s for s in result.steps if s.rule.name == "equivalents"), None)
    months = step.inputs.get("by_month", {}) if step else {}
    found: dict[str, dict[str, str]] = to_json({c: months.get(c, {}) for c in CATEGORIES})
    return found


@dataclass(frozen=True)
class FundFigures:
    """The fund's year (`/insurance/figures`), or why there is none."""

    doc: dict[str, Any] | None
    message_zh: str = ""
    message_en: str = ""


def fund_figures(app: Dangliang, figures: YearFigures) -> FundFigures:
    """The fund's year at the figures' position."""

    def make() -> FundFigures:
        period = Period(figures.year)
        try:
            return FundFigures(app.compute_insurance(period, position=figures.position).as_json())
        except DomainError as e:  # no fund policy, no fund year, scores not yet recorded…
            return FundFigures(None, e.message_zh, e.message_en)

    return figures.view(("fund",), make)


@dataclass(frozen=True)
class RecordedAdvances:
    """What the year's approved (or paid) monthly runs advanced: per institution (with the
    adjustments paid for those months, as the settlement counts them) and per month."""

    by_institution: dict[str, Any]
    runs: list[RunRecord]

    @property
    def any(self) -> bool:
        return bool(self.runs)


def recorded_advances(app: Dangliang, figures: YearFigures) -> RecordedAdvances:
    """The runs recorded up to the figures' position."""

    def make() -> RecordedAdvances:
        runs = app.payout_runs(position=figures.position)
        runs = {k: r for k, r in runs.items() if r.ledger == LEDGER}
        year = str(figures.year)
        closing = [
            r
            for r in runs.values()
            if r.closes_period and len(r.period) == 7 and r.period[:4] == year
        ]
        return RecordedAdvances(advances_paid(runs, figures.year) if closing else {}, closing)

    return figures.view(("runs",), make)


def items_of(app: Dangliang, figures: YearFigures, code: str) -> list[dict[str, Any]]:
    """The institution's equivalents by item and month (quantity, equivalents, records), as
    its explanation gives them at the figures' position (the application's kept
    computation: no second computation)."""

    def make() -> list[dict[str, Any]]:
        period = Period(figures.year)
        found = app.explain(code, period, position=figures.position)
        rows: list[dict[str, Any]] = found["equivalents_by_item"]
        return rows

    return figures.view(("items", code), make)


@dataclass(frozen=True)
class Pay:
    """An institution's performance-pay distribution (`distribute --json`), or the notes
    saying why there is none (no approved pool)."""

    doc: dict[str, Any] | None
    notes: list[str]


def pay_of(app: Dangliang, figures: YearFigures, code: str) -> Pay:
    """The distribution at the figures' position (kept by the application: a look-up)."""
    found = app.distribute(Period(figures.year), institution=code, position=figures.position)
    distribution = found.distributions.get(code)
    if distribution is None:
        return Pay(None, [w for w in found.warnings if w.startswith(f"{code}:")])
    return Pay(distribution.as_json(), [])
