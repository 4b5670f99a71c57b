"""Computations and their explanations: equivalents, institution compensation (a month's
advances, a year's settlement), what-if, explain, the records behind a number, and the
performance pay of staff — all as the log stood at a position, nothing written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import select

from dangliang.application.computation_cache import BASELINE, PositionKeyedLRU
from dangliang.application.core import Core, require_within_log
from dangliang.calculation import compensation as comp
from dangliang.calculation import performance
from dangliang.domain.errors import NotFound
from dangliang.domain.periods import Period
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.reform import Scenario
from dangliang.policy.subsidy_records import CountyInputs
from dangliang.projections import equivalents_queries as eq
from dangliang.projections.equivalents import EquivalentsProjection
from dangliang.projections.equivalents import projection_versions as versions_table
from dangliang.projections.facts_queries import PolicyInForce, performance_facts
from dangliang.projections.tracking import position as tracking_position

T = TypeVar("T")


class Computations(Core):
    def equivalents(
        self,
        period: str,
        *,
        as_of: datetime | None = None,
        position: int | None = None,
        institution: str | None = None,
        by: str | None = None,
    ) -> dict[str, Any]:
        """Equivalents for a month (`2024-03`) or year (`2024`), now or as the log stood at
        a moment (transaction time) or a log position."""
        head = self.catch_up()
        if position is not None:
            require_within_log(position, head)
        projection = self.equivalents_projection()
        with self.engine.connect() as conn:
            if as_of is not None:
                position = eq.position_at(self.log, as_of)
            result = eq.equivalents(
                conn, projection.t, period, position=position, institution=institution, by=by
            )
        result["as_of"] = as_of.isoformat() if as_of else None
        result["position"] = head if position is None else position
        result["log_head"] = head
        return result

    def compute(
        self,
        period: Period,
        *,
        as_of: datetime | None = None,
        position: int | None = None,
        tree: ParameterTree | None = None,
    ) -> comp.Computation:
        """Advances of a month or the settlement of a year, as the log stood at a position."""
        at = self.resolve_position(as_of=as_of, position=position)
        return self._computed(self._read_models(), period, at, tree)

    def what_if(
        self,
        period: Period,
        scenario: Scenario,
        *,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """The scenario beside the baseline, per institution; nothing is written."""
        at = self.resolve_position(as_of=as_of, position=position)
        models = self._read_models()
        policy, _ = self._gathered(models, period, at)  # once for both runs
        baseline = self._computed(models, period, at)
        reform = self._computed(models, period, at, scenario.apply(policy.tree))
        return comp.difference(baseline, reform, scenario)

    def explain(
        self,
        institution: str,
        period: Period,
        *,
        component: str | None = None,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        at = self.resolve_position(as_of=as_of, position=position)
        models = self._read_models()
        computation = self._computed(models, period, at)
        with self.engine.connect() as conn:
            return comp.explain(conn, models.cube.t, computation, institution, component)

    def records(
        self,
        institution: str,
        period: str,
        *,
        item: str | None = None,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """The service records behind an institution's equivalents in a month or year."""
        at = self.resolve_position(as_of=as_of, position=position)
        t = self.equivalents_projection().t
        with self.engine.connect() as conn:
            rows = eq.records_in(
                conn,
                t,
                self.log.events_table,
                institution,
                Period.of(period).month_labels,
                item=item,
                position=at,
            )
        return {"institution": institution, "period": period, "position": at, "records": rows}

    def records_page(
        self,
        institution: str,
        period: str,
        *,
        item: str | None = None,
        offset: int = 0,
        limit: int = 50,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """One page of `records`, in import order within each month and item, with the
        totals of all of them (count, quantity, equivalents): what a screen pages through
        without reading every record and its source id."""
        at = self.resolve_position(as_of=as_of, position=position)
        t = self.equivalents_projection().t
        with self.engine.connect() as conn:
            found = eq.records_page(
                conn,
                t,
                self.log.events_table,
                institution,
                Period.of(period).month_labels,
                item=item,
                position=at,
                offset=offset,
                limit=limit,
            )
        return {
            "institution": institution,
            "period": period,
            "position": at,
            "count": found.count,
            "quantity": Decimal(found.quantity_e4).scaleb(-4),
            "equivalents": Decimal(found.equivalents_e8).scaleb(-8),
            "offset": offset,
            "records": found.rows,
        }

    def distribute(
        self,
        period: Period,
        *,
        institution: str | None = None,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> performance.PerformanceResult:
        """Each institution's performance pay shared among its staff (a year, or a month's
        provisional share), as the log stood at a position."""
        at = self.resolve_position(as_of=as_of, position=position)
        return self._distributed(self._read_models(), period, at, institution)

    def explain_staff(
        self,
        staff_id: str,
        period: Period,
        *,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """One person's performance pay: every step with their own entry, per institution."""
        at = self.resolve_position(as_of=as_of, position=position)
        models = self._read_models()
        with self.engine.connect() as conn:
            staff, _ = performance_facts(conn, period.year, at)
        # A person shares only in the pools of institutions they were posted to (as at `at`),
        # and each institution's distribution is its own: only those are computed.
        person = staff.get(staff_id)
        codes = sorted({p["institution_code"] for p in person.postings}) if person else []
        found = [(code, self._distributed(models, period, at, code)) for code in codes]
        shares = [
            (code, d)
            for code, result in found
            if (d := result.distributions.get(code)) is not None and staff_id in d.staff
        ]
        with self.engine.connect() as conn:
            parts = [
                {
                    "institution": code,
                    "share": d.staff[staff_id].as_json(),
                    "steps": d.explain(staff_id),
                    "equivalents_by_item": performance.staff_equivalents(
                        conn, models.cube.t, code, period, at, staff=staff_id
                    ).get(staff_id, []),
                }
                for code, d in shares
            ]
        if not parts:
            raise NotFound(
                f"{period.label} 的绩效分配中没有职工 {staff_id}",
                f"staff {staff_id} is in no distribution of {period.label}",
            )
        return {
            "staff_id": staff_id,
            "period": period.label,
            "position": at,
            "institutions": parts,
        }

    # ---- computations kept by position (application.computation_cache) ---------------------

    def _read_models(self) -> ReadModels:
        """The active cube and the version of every read model a computation reads."""
        with self.engine.connect() as conn:
            query = select(versions_table.c.name, versions_table.c.active)
            versions = tuple(sorted((str(n), str(a)) for n, a in conn.execute(query)))
        suffix = dict(versions).get("equivalents") or "a"  # as `active_suffix` reads it
        return ReadModels(EquivalentsProjection(suffix), versions)

    def _distributed(
        self, models: ReadModels, period: Period, at: int, institution: str | None
    ) -> performance.PerformanceResult:
        """The county's performance pay at `at`, or one institution's (the same shares:
        each institution's pool is shared among its own staff only)."""

        def make() -> performance.PerformanceResult:
            with self.engine.connect() as conn:
                return performance.compute(conn, models.cube.t, period, at, institution=institution)

        key = ("distribution", models.versions, period.label, at, institution)
        return self._kept(self.computation_cache.results, key, models, at, make)

    def _gathered(
        self, models: ReadModels, period: Period, at: int
    ) -> tuple[PolicyInForce, CountyInputs]:
        """The policy and the county's inputs of the period as at `at` (read once)."""

        def make() -> tuple[PolicyInForce, CountyInputs]:
            with self.engine.connect() as conn:
                return comp.gather(conn, models.cube.t, period, at)

        key = (models.versions, period.label, at)
        return self._kept(self.computation_cache.gathers, key, models, at, make)

    def _computed(
        self,
        models: ReadModels,
        period: Period,
        at: int,
        tree: ParameterTree | None = None,
    ) -> comp.Computation:
        """The period computed at `at`, with the policy's parameters or `tree` (a what-if's,
        kept under its digest: never mistaken for the baseline)."""

        def make() -> comp.Computation:
            policy, county = self._gathered(models, period, at)
            return comp.run(period, at, policy, county, tree=tree)

        parameters = BASELINE if tree is None else tree.digest()
        key = ("compensation", models.versions, period.label, at, parameters)
        return self._kept(self.computation_cache.results, key, models, at, make)

    def _kept(
        self,
        lru: PositionKeyedLRU,
        key: tuple[Any, ...],
        models: ReadModels,
        at: int,
        make: Callable[[], T],
    ) -> T:
        """`make()` once per key; kept only if the cube stood at or beyond `at` before and
        after it was made (a plain rebuild elsewhere rewinds it: a partial read is not kept)."""
        stood = [False]

        def stands() -> bool:
            with self.engine.connect() as conn:
                return tracking_position(conn, models.cube.name) >= at

        def checked() -> T:
            stood[0] = stands()
            return make()

        return lru.get(key, checked, keep=lambda: stood[0] and stands())


@dataclass(frozen=True)
class ReadModels:
    """The equivalents cube in use and the active version of every read model (the cube's
    table suffix, the inputs' and the registry's formats): a kept computation's key holds
    the versions, so a rebuild or an upgrade of any of them never meets an older result."""

    cube: EquivalentsProjection
    versions: tuple[tuple[str, str], ...]
