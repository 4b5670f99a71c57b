"""The medical-insurance fund (医保基金): compute a period of the fund from the log, explain a
community's figures, try a what-if, list the records behind them, and record fund runs
(advances and the year-end settlement) as payout runs of the `ins-` ledger — approved, paid,
replayed and verified like every payout run (docs/insurance.md)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from dangliang.application.pay_runs import RUNS_LOCK, PayRuns, refuse_other_drafts, require_ended
from dangliang.calculation import fund as calc
from dangliang.domain.payout import INSURANCE, PayoutRefused
from dangliang.domain.periods import Period
from dangliang.ledger.chain import chain_head
from dangliang.payouts import insurance_runs, rulesets
from dangliang.payouts import runs as payouts
from dangliang.payouts.insurance_statements import write_insurance_statement
from dangliang.policy.insurance import advance_months, reads_equivalents
from dangliang.policy.reform import scenario_from_sets
from dangliang.projections import facts_queries as inp
from dangliang.projections import insurance_inputs as facts
from dangliang.projections import insurance_queries as q


class InsuranceFund(PayRuns):
    def compute_insurance(
        self,
        period: Period,
        *,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> calc.InsuranceComputation:
        """A month, quarter or year of the fund, as the log stood at a position."""
        at = self.resolve_position(as_of=as_of, position=position)
        with self.engine.connect() as conn:
            return calc.compute(conn, self.equivalents_projection().t, period, at)

    def insurance_what_if(
        self,
        period: Period,
        sets: Iterable[str],
        *,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """`--set path=value` beside the baseline, per community; nothing is written."""
        at = self.resolve_position(as_of=as_of, position=position)
        with self.engine.connect() as conn:
            policy = inp.policy_at(conn, at, scheme=calc.SCHEME)
            fund = calc.gather(
                conn,
                self.equivalents_projection().t,
                period.year,
                at,
                with_equivalents=reads_equivalents(policy.tree, period.year),
            )
        scenario = scenario_from_sets(list(sets), policy.tree, period.first_day)
        baseline = calc.run(period, at, policy, fund)
        reform = calc.run(period, at, policy, fund, tree=scenario.apply(policy.tree))
        return calc.difference(baseline, reform, scenario)

    def explain_insurance(
        self,
        community: str,
        period: Period,
        *,
        records: int = 0,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        at = self.resolve_position(as_of=as_of, position=position)
        with self.engine.connect() as conn:
            computation = calc.compute(conn, self.equivalents_projection().t, period, at)
            return calc.explain(conn, computation, community, records=records)

    def insurance_records(
        self,
        community: str,
        year: int,
        *,
        month: int | None = None,
        limit: int | None = None,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """The claims and the enrolment behind a community's figures, as they stood then."""
        at = self.resolve_position(as_of=as_of, position=position)
        with self.engine.connect() as conn:
            if community not in facts.communities_at(conn, at):
                raise calc.UnknownCommunity(
                    f"未登记的医共体：{community}", f"unknown community: {community}"
                )
            return {
                "community": community,
                "year": year,
                "position": at,
                "claims": q.claims_in(
                    conn, community=community, year=year, position=at, month=month, limit=limit
                ),
                "enrolments": q.enrolments_in(
                    conn, community=community, year=year, position=at, limit=limit
                ),
            }

    def communities(self, *, position: int | None = None) -> list[dict[str, Any]]:
        self.catch_up()
        with self.engine.connect() as conn:
            return [
                {
                    "code": c.code,
                    "name": c.name,
                    "lead_hospital_code": c.lead_hospital_code,
                    "lead_hospital_name": c.lead_hospital_name,
                    "members": list(c.members),
                }
                for c in facts.communities_at(conn, position).values()
            ]

    # ---- fund runs ---------------------------------------------------------------------------

    def run_insurance(self, period: Period, *, actor: str, today: date) -> inp.RunRecord:
        """Compute and record a fund run (draft) for a month or quarter that has ended
        (advances, by the policy's `advance.frequency`) or a year that has ended (settlement)
        with the current insurance rule set; it supersedes the period's draft, if any."""
        require_ended(period, today, ("医保基金批次", "a fund run"))
        with self.one_at_a_time(RUNS_LOCK):  # check, compute, append: one at a time
            position = self.catch_up()
            t = self.equivalents_projection().t
            rules = rulesets.current("insurance")
            with self.engine.connect() as conn:
                policy = inp.policy_at(conn, position, scheme=calc.SCHEME)
                if not period.is_year:
                    frequency = advance_months(policy.tree, period.year)
                    wanted = "quarterly" if period.quarter else "monthly"
                    if frequency != wanted:
                        example = (
                            f"{period.year}-Q1" if frequency == "quarterly" else f"{period.year}-01"
                        )
                        raise PayoutRefused(
                            f"本县医保基金按{'季' if frequency == 'quarterly' else '月'}预拨"
                            f"（advance.frequency = {frequency}）：请按该周期计算，如 {example}",
                            f"the fund's advances are {frequency} (advance.frequency): "
                            f"run a period such as {example}",
                        )
                refuse_other_drafts(
                    insurance_runs.insurance_runs(conn, position).values(),
                    f"{INSURANCE}{period.label}",
                )
                results = rules.compute_run(conn, t, period, position)
                _, head = chain_head(conn, position)
            label = f"{INSURANCE}{period.label}"
            return self._record_run(label, results, position, head, actor, rules)

    def insurance_runs(self) -> dict[str, inp.RunRecord]:
        return {k: r for k, r in self.payout_runs().items() if r.ledger == "insurance"}

    def write_insurance_statement(self, run_id: str, path: Path) -> Path:
        run = self.payout_run(run_id)
        if run.ledger != "insurance":
            raise PayoutRefused(
                f"{run_id} 不是医保基金批次（请用 payout statement）",
                f"{run_id} is not a fund run (use payout statement)",
            )
        return write_insurance_statement(payouts.run_json(run), path)
