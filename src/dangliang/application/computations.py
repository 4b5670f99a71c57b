"""Computations and their explanations: equivalents, institution compensation (a month's
advances, a year's settlement), what-if, explain, the records behind a number, and the
performance pay of staff — all as the log stood at a position, nothing written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dangliang.application.core import Core, require_within_log
from dangliang.calculation import compensation as comp
from dangliang.calculation import performance
from dangliang.domain.errors import NotFound
from dangliang.domain.periods import Period
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.reform import Scenario
from dangliang.projections import equivalents_queries as eq


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
        with self.engine.connect() as conn:
            return comp.compute(conn, self.equivalents_projection().t, period, at, tree=tree)

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
        t = self.equivalents_projection().t
        with self.engine.connect() as conn:
            policy, county = comp.gather(conn, t, period, at)  # once for both runs
        baseline = comp.run(period, at, policy, county)
        reform = comp.run(period, at, policy, county, tree=scenario.apply(policy.tree))
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
        t = self.equivalents_projection().t
        with self.engine.connect() as conn:
            computation = comp.compute(conn, t, period, at)
            return comp.explain(conn, t, computation, institution, component)

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
        with self.engine.connect() as conn:
            return performance.compute(
                conn, self.equivalents_projection().t, period, at, institution=institution
            )

    def explain_staff(
        self,
        staff_id: str,
        period: Period,
        *,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """One person's performance pay: every step with their own entry, per institution."""
        found = self.distribute(period, as_of=as_of, position=position)
        t = self.equivalents_projection().t
        with self.engine.connect() as conn:
            parts = [
                {
                    "institution": code,
                    "share": d.staff[staff_id].as_json(),
                    "steps": d.explain(staff_id),
                    "equivalents_by_item": performance.staff_equivalents(
                        conn, t, code, period, found.position
                    ).get(staff_id, []),
                }
                for code, d in sorted(found.distributions.items())
                if staff_id in d.staff
            ]
        if not parts:
            raise NotFound(
                f"{period.label} 的绩效分配中没有职工 {staff_id}",
                f"staff {staff_id} is in no distribution of {period.label}",
            )
        return {
            "staff_id": staff_id,
            "period": period.label,
            "position": found.position,
            "institutions": parts,
        }
