"""Computations kept by log position (`application.computation_cache`): the same position
gives the very same result, a new record (a later position) a new one, a rebuilt cube
(another table suffix) another key, a what-if's parameters never the baseline, concurrent
callers one computation — on SQLite and PostgreSQL, and the LRU on its own. The county is
four of the generated county's centres (`four_centres`): what is checked is what is computed
when, not the county's figures."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from dangliang.application import Dangliang, bootstrap
from dangliang.application.computation_cache import PositionKeyedLRU
from dangliang.domain.periods import Period
from dangliang.domain.service import ServiceRecord
from dangliang.policy.reform import Change, Scenario
from dangliang.settings import Settings
from tests.conftest import Prepare, PrepareApp
from tests.integration.test_compensation import YEAR, compensation

D = Decimal


def record_one_more(app: Dangliang, source_id: str = "CACHE-1") -> None:
    app.log.save(
        ServiceRecord.record(
            institution_code="C01",
            source_id=source_id,
            staff_id="S-CACHE",
            item_code="BM001",
            quantity=D("100"),
            service_date=date(YEAR, 3, 10),
            actor="t",
        )
    )


def test_the_same_position_gives_the_very_same_result_and_a_new_record_a_new_one(
    prepared_app: PrepareApp, four_centres: Any
) -> None:
    app = prepared_app(compensation(four_centres))
    year = Period(YEAR)
    first = app.compute(year)
    assert app.compute(year) is first
    assert app.compute(year, position=first.position) is first
    assert app.explain("C01", year)["amount"] == str(first.result.institutions["C01"].total)
    assert app.distribute(year) is app.distribute(year)
    assert app.distribute(year, institution="C01") is not app.distribute(year)
    gathers = app.computation_cache.gathers.misses
    app.what_if(year, raise_price())  # the baseline and its inputs are those already kept
    assert app.computation_cache.gathers.misses == gathers

    record_one_more(app)
    later = app.compute(year)
    assert later is not first and later.position > first.position
    before = first.result.institutions["C01"].equivalents["basic_medical"].actual
    assert later.result.institutions["C01"].equivalents["basic_medical"].actual == before + 100
    assert app.compute(year, position=first.position) is first  # the past stays as it was


def raise_price(price: str = "15") -> Scenario:
    change = Change("unit_price.basic_medical", D(price), date(YEAR, 1, 1))
    return Scenario(f"unit_price.basic_medical={price}", (change,))


def test_a_what_if_tree_never_gives_the_baseline(
    prepared_app: PrepareApp, four_centres: Any
) -> None:
    app = prepared_app(compensation(four_centres))
    year = Period(YEAR)
    baseline = app.compute(year)
    tree = raise_price().apply(baseline.tree)
    reform = app.compute(year, tree=tree)
    assert reform is not baseline and reform.tree is tree
    assert reform.result.total > baseline.result.total
    assert app.compute(year) is baseline
    assert app.compute(year, tree=raise_price().apply(baseline.tree)) is reform  # same digest
    other = app.compute(year, tree=raise_price("16").apply(baseline.tree))
    assert other.result.total > reform.result.total
    diff = app.what_if(year, raise_price())
    assert D(diff["totals"]["baseline"]) == baseline.result.total
    assert D(diff["totals"]["scenario"]) == reform.result.total


def test_a_rebuilt_cube_is_another_key(prepared_url: Prepare, four_centres: Any) -> None:
    url = prepared_url(compensation(four_centres))
    app, admin = bootstrap(Settings(url)), bootstrap(Settings(url))
    try:
        year = Period(YEAR)
        first = app.compute(year)
        assert app.equivalents_projection().suffix == "a"
        admin.rebuild(blue_green=True)  # another process: this one's cache is not emptied
        assert app.equivalents_projection().suffix == "b"
        again = app.compute(year)
        assert again is not first and again.position == first.position
        assert again.as_json() == first.as_json()  # the same log, the same numbers
        assert app.compute(year) is again
        app.rebuild()  # this process's own rebuild empties its cache
        assert len(app.computation_cache.results) == 0
        assert app.compute(year).as_json() == first.as_json()
    finally:
        app.close()
        admin.close()


def test_concurrent_callers_share_one_computation(
    prepared_app: PrepareApp, four_centres: Any
) -> None:
    app = prepared_app(compensation(four_centres))
    year = Period(YEAR)
    head = app.catch_up()
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: app.compute(year, position=head), range(8)))
        staff = list(pool.map(lambda _: app.distribute(year, position=head), range(4)))
    assert all(f is found[0] for f in found)
    assert all(s is staff[0] for s in staff)
    assert app.computation_cache.gathers.misses == 1
    assert app.computation_cache.results.misses == 2  # the year's computation, the shares


# ---- the LRU on its own -----------------------------------------------------------------------


def test_the_lru_keeps_the_latest_and_makes_each_key_once_across_threads() -> None:
    lru = PositionKeyedLRU(2)
    made: list[str] = []
    started = threading.Barrier(5)

    def slow(key: str) -> Any:
        made.append(key)
        time.sleep(0.05)
        return object()

    def ask(key: str) -> Any:
        started.wait()
        return lru.get(key, lambda: slow(key))

    with ThreadPoolExecutor(5) as pool:
        values = list(pool.map(ask, ["a"] * 5))
    assert made == ["a"] and all(v is values[0] for v in values)
    b = lru.get("b", lambda: slow("b"))
    lru.get("a", lambda: slow("a"))  # a hit: "a" is now the latest
    lru.get("c", lambda: slow("c"))  # pushes out "b", the least recently used
    assert len(lru) == 2 and made == ["a", "b", "c"]
    assert lru.get("b", lambda: slow("b")) is not b and made[-1] == "b"


def test_a_value_made_while_the_cube_was_not_standing_is_not_kept() -> None:
    lru = PositionKeyedLRU(4)
    first = lru.get("k", object, keep=lambda: False)
    assert lru.get("k", object) is not first
    with pytest.raises(ValueError):
        PositionKeyedLRU(0)


def test_a_persons_explanation_computes_only_their_institutions_with_the_countys_shares(
    prepared_app: PrepareApp, four_centres: Any
) -> None:
    from tests.integration.test_performance import record_pool

    app = prepared_app(compensation(four_centres))
    staff = record_pool(app)
    year = Period(YEAR)
    person = app.explain_staff(staff[1], year)
    kept = [k for k in app.computation_cache.results.kept_keys() if k[0] == "distribution"]
    assert [k[-1] for k in kept] == ["C01"]  # not the whole county's
    county_wide = app.distribute(year).distributions
    for staff_id in staff[:4]:
        found = app.explain_staff(staff_id, year)
        for part in found["institutions"]:
            d = county_wide[part["institution"]]
            assert part["share"] == d.staff[staff_id].as_json()
            assert part["steps"] == d.explain(staff_id)
        assert [p["institution"] for p in found["institutions"]] == [
            code for code, d in sorted(county_wide.items()) if staff_id in d.staff
        ]
    assert person["institutions"][0]["equivalents_by_item"]
