"""The reads behind the overview and the institution pages (概览、机构页的数据).

Every figure of those pages comes from one computation of the year (`app.compute`), the
expensive read (the whole year's equivalents cube: about 0.4 s on a million records). At a
given log position a computation is the same for ever (docs/compensation.md), so it is kept
per application, year and position, and a page opened again — or the next institution's
page — costs a dictionary look-up until the log moves on (an import, a new input, a run).
The fund's computation is kept the same way.

Besides: the names of institutions and catalogue items (the small registry tables), the
years the equivalents cube holds (two index look-ups), and the recorded payout runs.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, select

from dangliang.application import Dangliang
from dangliang.calculation import compensation as comp
from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period
from dangliang.payouts.paid_periods import advances_paid
from dangliang.policy.subsidy_records import CATEGORIES
from dangliang.policy.trace import to_json
from dangliang.projections import registry as reg
from dangliang.projections.facts_queries import RunRecord

LEDGER = "compensation"  # institution compensation runs (not the fund's, not performance pay)
KEEP = 64  # entries kept per application, all at the log's latest position
T = TypeVar("T")

_lock = threading.Lock()
_missing = object()
_kept: weakref.WeakKeyDictionary[Dangliang, OrderedDict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)


def _cached(app: Dangliang, head: int, key: tuple[Any, ...], make: Callable[[], T]) -> T:
    """`make()` once per application, log position and key. Entries of earlier positions
    are dropped as soon as the log moves on: nothing asks for them again."""
    with _lock:
        entries = _kept.setdefault(app, OrderedDict())
        found = entries.get((head, *key), _missing)
        if found is not _missing:
            entries.move_to_end((head, *key))
            return found  # type: ignore[no-any-return]
    made = make()  # outside the lock: two first requests may both compute, both correct
    with _lock:
        for old in [k for k in entries if k[0] < head]:
            del entries[old]
        entries[(head, *key)] = made
        while len(entries) > KEEP:
            entries.popitem(last=False)
    return made


@dataclass(frozen=True)
class YearFigures:
    """The year's computation and its JSON (`compute --json`), each institution with its
    equivalents by month (`by_month`: category → month → equivalents, from the computation's
    own equivalents step). Shared between requests: read it, never change it."""

    year: int
    position: int
    computation: comp.Computation
    doc: dict[str, Any]

    def institution(self, code: str) -> dict[str, Any] | None:
        return next((r for r in self.doc["institutions"] if r["code"] == code), None)


def year_figures(app: Dangliang, year: int) -> YearFigures:
    """The year's settlement computation as the log stands now (kept per position)."""
    head = app.catch_up()

    def make() -> YearFigures:
        computation = app.compute(Period(year), position=head)
        doc = computation.as_json()
        for row in doc["institutions"]:
            row["by_month"] = _by_month(computation, row["code"])
        return YearFigures(year, head, computation, doc)

    return _cached(app, head, ("compensation", year), make)


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


def fund_figures(app: Dangliang, year: int) -> FundFigures:
    head = app.catch_up()

    def make() -> FundFigures:
        try:
            return FundFigures(app.compute_insurance(Period(year), position=head).as_json())
        except DomainError as e:  # no fund policy, no fund year, scores not yet recorded…
            return FundFigures(None, e.message_zh, e.message_en)

    return _cached(app, head, ("insurance", year), make)


def institution_names(app: Dangliang) -> dict[str, str]:
    app.institutions()  # brings the registry up to date
    t = reg.institutions
    with app.engine.connect() as conn:
        return {code: name for code, name in conn.execute(select(t.c.code, t.c.name))}


def item_names(app: Dangliang) -> dict[str, str]:
    t = reg.items
    with app.engine.connect() as conn:
        return {code: name for code, name in conn.execute(select(t.c.item_code, t.c.name))}


def service_years(app: Dangliang) -> list[int]:
    """The years from the first to the last month with service records (newest first)."""
    deltas = app.equivalents_projection().t.deltas
    with app.engine.connect() as conn:  # one index look-up each (min and max apart)
        first = conn.scalar(select(func.min(deltas.c.month)))
        last = conn.scalar(select(func.max(deltas.c.month)))
    if not first or not last:
        return []
    return list(range(int(last[:4]), int(first[:4]) - 1, -1))


@dataclass(frozen=True)
class RecordedAdvances:
    """What the year's approved (or paid) monthly runs advanced: per institution (with the
    adjustments paid for those months, as the settlement counts them) and per month."""

    by_institution: dict[str, Any]
    runs: list[RunRecord]

    @property
    def any(self) -> bool:
        return bool(self.runs)


def recorded_advances(app: Dangliang, year: int) -> RecordedAdvances:
    head = app.catch_up()

    def make() -> RecordedAdvances:
        runs = {k: r for k, r in app.payout_runs(position=head).items() if r.ledger == LEDGER}
        closing = [
            r
            for r in runs.values()
            if r.closes_period and len(r.period) == 7 and r.period[:4] == str(year)
        ]
        return RecordedAdvances(advances_paid(runs, year) if closing else {}, closing)

    return _cached(app, head, ("runs", year), make)


def items_of(app: Dangliang, figures: YearFigures, code: str) -> list[dict[str, Any]]:
    """The institution's equivalents by item and month (quantity, equivalents, records), as
    its explanation gives them, from the kept computation (no second computation)."""

    def make() -> list[dict[str, Any]]:
        t = app.equivalents_projection().t
        with app.engine.connect() as conn:
            found = comp.explain(conn, t, figures.computation, code)
        rows: list[dict[str, Any]] = found["equivalents_by_item"]
        return rows

    return _cached(app, figures.position, ("items", figures.year, code), make)


@dataclass(frozen=True)
class Pay:
    """An institution's performance-pay distribution (`distribute --json`), or the notes
    saying why there is none (no approved pool)."""

    doc: dict[str, Any] | None
    notes: list[str]


def pay_of(app: Dangliang, year: int, code: str) -> Pay:
    head = app.catch_up()

    def make() -> Pay:
        found = app.distribute(Period(year), institution=code, position=head)
        distribution = found.distributions.get(code)
        if distribution is None:
            return Pay(None, [w for w in found.warnings if w.startswith(f"{code}:")])
        return Pay(distribution.as_json(), [])

    return _cached(app, head, ("pay", year, code), make)
