"""The equivalents cube against a naive recomputation from the events themselves.

For random sequences of record / correct / void / value-change events, with catch-ups at
random points: the incrementally maintained cube, a rebuilt cube and a naive fold of the
events agree exactly, and as-of answers equal the naive fold of the events recorded up to
that position.
"""

from __future__ import annotations

import csv
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dangliang.application import Dangliang, bootstrap
from dangliang.domain.catalogue import CatalogueItem
from dangliang.domain.ids import catalogue_item_id, service_record_id
from dangliang.domain.institution import Institution
from dangliang.domain.service import ServiceRecord
from dangliang.domain.staff import Staff
from dangliang.projections import equivalents as eq
from dangliang.settings import Settings
from tests.conftest import PrepareApp, examples, load_reference, records

ITEMS = {"BM1": "basic_medical", "BM2": "basic_medical", "PH1": "basic_public_health"}
INSTITUTIONS = {"C01": "S1", "C01V01": "S2"}  # institution → the one staff member posted there
YEAR = 2024


def seed_reference(app: Dangliang) -> None:
    log = app.log
    centre = Institution.register(
        code="C01",
        name="甲镇卫生院",
        kind="township_health_centre",
        parent_code=None,
        remote=False,
        actor="t",
    )
    clinic = Institution.register(
        code="C01V01",
        name="甲村卫生室",
        kind="village_clinic",
        parent_code="C01",
        remote=False,
        actor="t",
    )
    people = []
    for inst, sid in INSTITUTIONS.items():
        person = Staff.register(staff_id=sid, name=sid, actor="t")
        person.post_to(
            institution_code=inst,
            post="clinical",
            establishment="on",
            from_date=date(2020, 1, 1),
            to_date=None,
            actor="t",
        )
        people.append(person)
    items = []
    for code, category in ITEMS.items():
        item = CatalogueItem.define(
            item_code=code, name=code, category=category, unit="次", actor="t"
        )
        item.set_value(
            value=Decimal("1.5000"), effective_from=date(YEAR, 1, 1), reference="test", actor="t"
        )
        items.append(item)
    log.save(centre, clinic, *people, *items)


@dataclass
class Naive:
    """The events folded by hand: what the cube must say."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    values: dict[str, dict[date, Decimal]] = field(
        default_factory=lambda: {code: {date(YEAR, 1, 1): Decimal("1.5")} for code in ITEMS}
    )

    def cube(self) -> list[tuple[Any, ...]]:
        cells: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
        for r in self.records.values():
            if r["voided"]:
                continue
            key = (r["inst"], r["staff"], r["item"], r["month"], r["compliant"])
            cells[key][0] += int(r["qty"] * 10_000)
            cells[key][1] += 1
        return sorted((*k, q, n) for k, (q, n) in cells.items() if q or n)

    def value(self, item: str, month: str) -> Decimal:
        first = date(int(month[:4]), int(month[5:]), 1)
        starts = [d for d in self.values[item] if d <= first]
        return self.values[item][max(starts)] if starts else Decimal(0)

    def equivalents(self, month: str) -> dict[str, dict[str, Decimal]]:
        out: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))  # type: ignore[arg-type]
        for r in self.records.values():
            if r["voided"] or r["month"] != month:
                continue
            amount = r["qty"] * self.value(r["item"], month)
            if ITEMS[r["item"]] == "basic_medical":
                out[r["inst"]]["basic_medical"] += amount
            elif r["compliant"]:
                out[r["inst"]]["basic_public_health"] += amount
            else:
                out[r["inst"]]["non_compliant_public_health"] += amount
        return out


KINDS = ("basic_medical", "basic_public_health", "non_compliant_public_health")


def as_decimals(result: dict[str, Any]) -> dict[str, dict[str, Decimal]]:
    """The non-zero figures of an equivalents answer, per institution."""
    out = {
        inst["code"]: {k: Decimal(inst[k]) for k in KINDS if Decimal(inst[k])}
        for inst in result["institutions"]
    }
    return {k: v for k, v in out.items() if v}


def naive_as_dict(naive: dict[str, dict[str, Decimal]]) -> dict[str, dict[str, Decimal]]:
    """Exact sums shown at 4 places, half up (docs/compensation.md, rounding), zeros left out."""
    out = {
        inst: {
            k: q
            for k, v in parts.items()
            if (q := v.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))
        }
        for inst, parts in naive.items()
    }
    return {k: v for k, v in out.items() if v}


months = st.integers(min_value=1, max_value=4).map(lambda m: f"{YEAR}-{m:02d}")
quantities = st.decimals(min_value=Decimal("0.5"), max_value=Decimal(20), places=1)
operation = st.one_of(
    st.tuples(
        st.just("record"),
        st.sampled_from(sorted(INSTITUTIONS)),
        st.sampled_from(sorted(ITEMS)),
        quantities,
        months,
        st.booleans(),
    ),
    st.tuples(
        st.just("correct"),
        st.integers(min_value=0, max_value=50),
        st.sampled_from(sorted(ITEMS)),
        quantities,
        months,
        st.booleans(),
    ),
    st.tuples(st.just("void"), st.integers(min_value=0, max_value=50)),
    st.tuples(
        st.just("value"),
        st.sampled_from(sorted(ITEMS)),
        months,
        st.decimals(min_value=Decimal(0), max_value=Decimal(9), places=4),
    ),
    st.tuples(st.just("catch_up")),
)


def run_scenario(app: Dangliang, ops: list[tuple[Any, ...]]) -> None:
    seed_reference(app)
    naive = Naive()
    snapshots: list[tuple[int, Naive]] = []
    order: list[str] = []
    for op in ops:
        kind = op[0]
        if kind == "record":
            _, inst, item, qty, month, compliant = op
            source = f"R{len(order)}"
            record = ServiceRecord.record(
                institution_code=inst,
                source_id=source,
                staff_id=INSTITUTIONS[inst],
                item_code=item,
                quantity=qty,
                service_date=date.fromisoformat(f"{month}-15"),
                compliant=compliant,
                actor="t",
            )
            app.log.save(record)
            order.append(source)
            naive.records[source] = {
                "inst": inst,
                "staff": INSTITUTIONS[inst],
                "item": item,
                "qty": qty,
                "month": month,
                "compliant": compliant,
                "voided": False,
            }
        elif kind in ("correct", "void") and order:
            source = order[op[1] % len(order)]
            state = naive.records[source]
            if state["voided"]:
                continue
            record = app.log.repository.get(service_record_id(state["inst"], source))
            if kind == "void":
                record.void(reason="test", actor="t")
                state["voided"] = True
            else:
                _, _, item, qty, month, compliant = op
                new = {"item": item, "qty": qty, "month": month, "compliant": compliant}
                if all(state[k] == v for k, v in new.items()):
                    continue
                record.correct(
                    reason="test",
                    actor="t",
                    item_code=item,
                    quantity=qty,
                    service_date=date.fromisoformat(f"{month}-20"),
                    compliant=compliant,
                )
                state.update(new)
            app.log.save(record)
        elif kind == "value":
            _, item_code, month, value = op
            item = app.log.repository.get(catalogue_item_id(item_code))
            start = date.fromisoformat(f"{month}-01")
            if item.set_value(value=value, effective_from=start, reference="t", actor="t"):
                app.log.save(item)
                naive.values[item_code][start] = value.quantize(Decimal("0.0001"))
        elif kind == "catch_up":
            app.catch_up()
        snapshots.append((app.log.head(), _copy(naive)))

    app.catch_up()
    projection = app.equivalents_projection()
    with app.engine.connect() as conn:
        incremental = eq.cube_rows(conn, projection.t)
    assert incremental == naive.cube()

    for month in (f"{YEAR}-{m:02d}" for m in range(1, 5)):
        assert as_decimals(app.equivalents(month)) == naive_as_dict(naive.equivalents(month))
    for at, then in snapshots[:: max(1, len(snapshots) // 6)]:
        for month in (f"{YEAR}-01", f"{YEAR}-03"):
            answer = app.equivalents(month, position=at)
            assert as_decimals(answer) == naive_as_dict(then.equivalents(month)), (at, month)

    app.rebuild(blue_green=True)
    rebuilt = app.equivalents_projection()
    assert rebuilt.suffix != projection.suffix
    with app.engine.connect() as conn:
        assert eq.cube_rows(conn, rebuilt.t) == incremental


def _copy(naive: Naive) -> Naive:
    return Naive(
        records={k: dict(v) for k, v in naive.records.items()},
        values={k: dict(v) for k, v in naive.values.items()},
    )


@settings(
    max_examples=examples(12),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.slow
@given(ops=st.lists(operation, min_size=1, max_size=30))
def test_incremental_rebuilt_and_naive_agree(tmp_path: Path, ops: list[tuple[Any, ...]]) -> None:
    app = bootstrap(Settings(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}"))
    try:
        eq.EquivalentsProjection.batch_size = 7  # many small catch-up ranges
        run_scenario(app, ops)
    finally:
        eq.EquivalentsProjection.batch_size = 250_000
        app.close()


FIXED_SCENARIO: list[tuple[Any, ...]] = [
    ("record", "C01", "BM1", Decimal("2"), "2024-01", True),
    ("record", "C01", "PH1", Decimal("1"), "2024-01", False),
    ("record", "C01V01", "PH1", Decimal("3.5"), "2024-03", True),
    ("catch_up",),
    ("correct", 0, "BM2", Decimal("4"), "2024-03", True),
    ("value", "BM2", "2024-02", Decimal("2.2500")),
    ("void", 1),
    ("record", "C01", "BM1", Decimal("1"), "2024-03", True),
    ("catch_up",),
    ("value", "BM1", "2024-01", Decimal("0.5000")),
    ("correct", 2, "PH1", Decimal("3.5"), "2024-03", False),
]


def test_fixed_scenario_on_each_backend(app: Dangliang) -> None:
    run_scenario(app, FIXED_SCENARIO)


def test_generated_county_matches_a_naive_recomputation(
    prepared_app: PrepareApp, county: Any
) -> None:
    app = prepared_app(records(county))  # the county's reference data and records
    values: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
    categories: dict[str, str] = {}
    with county.files["catalogue"].open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            values[row["item_code"]].append(
                (date.fromisoformat(row["effective_from"]), Decimal(row["equivalent_value"]))
            )
            categories[row["item_code"]] = row["category"]
    expected: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    by_staff: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    with county.files["services"].open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            day = date.fromisoformat(row["service_date"])
            first = day.replace(day=1)
            value = max(v for v in values[row["item_code"]] if v[0] <= first)[1]
            amount = Decimal(row["quantity"]) * value
            month = row["service_date"][:7]
            category = categories[row["item_code"]]
            compliant = row["compliant"] != "false"
            if category == "basic_medical":
                key = "basic_medical"
            else:
                key = "basic_public_health" if compliant else "non_compliant_public_health"
            expected[(month, row["institution_code"])][key] += amount
            if key != "non_compliant_public_health":
                by_staff[(month, row["staff_id"])] += amount
    for month in ("2024-01", "2024-06", "2024-07", "2024-12"):
        result = app.equivalents(month, by="staff")
        got = as_decimals(result)
        want = naive_as_dict({inst: parts for (m, inst), parts in expected.items() if m == month})
        assert got == want
        staff_totals = {
            s["code"]: Decimal(s["basic_medical"]) + Decimal(s["basic_public_health"])
            for inst in result["institutions"]
            for s in inst["staff"]
        }
        staff_totals = {k: v for k, v in staff_totals.items() if v}  # non-compliant only: 0
        assert staff_totals == {sid: v for (m, sid), v in by_staff.items() if m == month and v}


def allow_frozen_time(app: Dangliang) -> None:
    """Under freezegun, event timestamps are FakeDatetime: encode them as datetimes."""
    from eventsourcing.persistence import DatetimeAsISO
    from freezegun.api import FakeDate, FakeDatetime

    from dangliang.ledger.eventlog import DateAsISO

    types = app.log.mapper.transcoder.types  # type: ignore[attr-defined]
    types[FakeDatetime] = DatetimeAsISO()
    types[FakeDate] = DateAsISO()


def test_as_of_answers_do_not_change_after_later_events(app: Dangliang, four_centres: Any) -> None:
    allow_frozen_time(app)
    with freeze_time("2025-01-10 09:00:00"):
        load_reference(app, four_centres)
        app.import_services(four_centres.files["services"], actor="t", today=date(2025, 1, 1))
        before = app.equivalents("2024-03", as_of=datetime(2025, 1, 10, 9, 30, tzinfo=UTC))
        assert before["institutions"]
    with freeze_time("2025-02-01 10:00:00"):
        # a later void, correction and value change, all in March 2024
        with four_centres.files["services"].open(encoding="utf-8") as f:
            march = [r for r in csv.DictReader(f) if r["service_date"].startswith("2024-03")]
        first = app.log.repository.get(
            service_record_id(march[0]["institution_code"], march[0]["source_id"])
        )
        first.void(reason="spot check", actor="auditor")
        second = app.log.repository.get(
            service_record_id(march[1]["institution_code"], march[1]["source_id"])
        )
        second.correct(reason="typo", actor="clerk", quantity=second.quantity + 5)
        item = app.log.repository.get(catalogue_item_id(march[2]["item_code"]))
        item.set_value(
            value=Decimal("9.9999"),
            effective_from=date(2024, 3, 1),
            reference="retroactive",
            actor="bureau",
        )
        app.log.save(first, second, item)
    now = app.equivalents("2024-03")
    again = app.equivalents("2024-03", as_of=datetime(2025, 1, 10, 9, 30, tzinfo=UTC))
    assert again["institutions"] == before["institutions"]
    assert again["position"] == before["position"]
    assert now["institutions"] != before["institutions"]


def test_rebuild_reproduces_the_incremental_cube(
    prepared_app: PrepareApp, four_centres: Any
) -> None:
    app = prepared_app(records(four_centres))  # imported and caught up: the incremental cube
    with app.engine.connect() as conn:
        incremental = eq.cube_rows(conn, app.equivalents_projection().t)
    assert len(incremental) > 100
    for blue_green in (False, True, True):
        head = app.rebuild(blue_green=blue_green)
        assert head == app.log.head()
        with app.engine.connect() as conn:
            assert eq.cube_rows(conn, app.equivalents_projection().t) == incremental
    status = app.projection_status()
    assert set(status.projections.values()) == {status.head}


def test_month_boundaries_and_a_value_change_on_the_first(app: Dangliang) -> None:
    """A record on the 31st belongs to its month; a value effective on the 1st of February
    prices February and later, not January — also when recorded afterwards."""
    allow_frozen_time(app)
    with freeze_time("2024-01-15 12:00:00"):  # the log's clock only moves forward
        seed_reference(app)
    with freeze_time("2024-02-01 00:00:00"):
        for source, day in (("jan31", date(2024, 1, 31)), ("feb01", date(2024, 2, 1))):
            app.log.save(
                ServiceRecord.record(
                    institution_code="C01",
                    source_id=source,
                    staff_id="S1",
                    item_code="BM1",
                    quantity=Decimal(2),
                    service_date=day,
                    actor="t",
                )
            )
    with freeze_time("2024-03-05 08:00:00"):
        item = app.log.repository.get(catalogue_item_id("BM1"))
        item.set_value(
            value=Decimal("4"), effective_from=date(2024, 2, 1), reference="调价", actor="bureau"
        )
        app.log.save(item)
    jan, feb = app.equivalents("2024-01"), app.equivalents("2024-02")
    assert jan["institutions"][0]["basic_medical"] == "3.0000"  # 2 × 1.5
    assert feb["institutions"][0]["basic_medical"] == "8.0000"  # 2 × 4 (new value)
    before = app.equivalents("2024-02", as_of=datetime(2024, 3, 1, tzinfo=UTC))
    assert before["institutions"][0]["basic_medical"] == "3.0000"  # 2 × 1.5, as it stood
    year = app.equivalents("2024")
    assert year["institutions"][0]["basic_medical"] == "11.0000"
    assert year["institutions"][0]["records"] == 2
