"""Payout runs (支付批次): a month's advances, a year's settlement and the staff distribution,
computed and recorded as drafts, approved by a second person, marked paid; and the documents
made from what a run recorded (payslips, distribution sheets; statements and payslips as
PDF)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from dangliang import __version__
from dangliang.application.core import Core
from dangliang.calculation import performance
from dangliang.domain import ids
from dangliang.domain.errors import NotFound
from dangliang.domain.payout import PERFORMANCE, PayoutPeriod, PayoutRefused, period_of_run
from dangliang.domain.periods import Period
from dangliang.ledger.chain import chain_head
from dangliang.payouts import payslips, pdf, rulesets, statement_html
from dangliang.payouts import runs as payouts
from dangliang.projections import facts_queries as inp
from dangliang.projections.insurance_inputs import communities_at


class PayRuns(Core):
    def run_payout(self, period: Period, *, actor: str, today: date) -> inp.RunRecord:
        """Compute and record a payout run (draft) for a month that has ended (advances) or a
        year that has ended (settlement) with the current compensation rule set; it
        supersedes the period's draft, if any."""
        require_ended(period, today, ("支付批次", "a payout run"))
        # From the check for other drafts to the draft's append, one process at a time: two
        # months' runs computed at once would each find no other draft open.
        with self.one_at_a_time(RUNS_LOCK):
            position = self.catch_up()
            t = self.equivalents_projection().t
            rules = rulesets.current("compensation")
            with self.engine.connect() as conn:
                refuse_other_drafts(
                    payouts.compensation_runs(conn, position).values(), period.label
                )
                results = rules.compute_run(conn, t, period, position)
                _, head = chain_head(conn, position)
            return self._record_run(period.label, results, position, head, actor, rules)

    def _record_run(
        self,
        label: str,
        results: dict[str, Any],
        position: int,
        head: str,
        actor: str,
        rules: rulesets.RuleSet,
    ) -> inp.RunRecord:
        """Record a computed run with the rule set that computed it (what a replay uses)."""
        found = self._payout_period(label)
        aggregate = found or PayoutPeriod.open(period=label, actor=actor)
        run_id = aggregate.record_run(
            position=position,
            position_recorded_at=self._recorded_at(position),
            chain_head=head,
            policy_bundle=results["policy"]["bundle"],
            parameters_digest=results["policy"]["parameters_digest"],
            results_json=payouts.canonical(results),
            results_digest=payouts.results_digest(results),
            software=f"dangliang {__version__}",
            rule_set=rules.version,
            actor=actor,
        )
        self._save_period(aggregate)
        return self.payout_run(run_id)

    def run_distribution(self, period: Period, *, actor: str, today: date) -> inp.RunRecord:
        """Compute and record a performance-pay distribution run (draft): a month's
        provisional shares, or the year's final shares with the difference to what the
        approved monthly runs paid, with the current performance rule set. Approved, paid and
        replayed like payout runs."""
        if today <= period.last_day:
            raise PayoutRefused(
                f"{period.label} 尚未结束，不能计算绩效分配批次",
                f"{period.label} has not ended: a distribution run is computed after it",
            )
        position = self.catch_up()
        t = self.equivalents_projection().t
        rules = rulesets.current("performance")
        with self.engine.connect() as conn:
            results = rules.compute_run(conn, t, period, position)
            _, head = chain_head(conn, position)
        label = f"{PERFORMANCE}{period.label}"
        return self._record_run(label, results, position, head, actor, rules)

    def approve_payout(self, run_id: str, *, reference: str, actor: str) -> inp.RunRecord:
        """Approve a draft run (maker-checker: not by whoever computed it)."""
        return self._act(
            run_id, lambda p: p.approve(run_id=run_id, reference=reference, actor=actor)
        )

    def reject_payout(self, run_id: str, *, reason: str, actor: str) -> inp.RunRecord:
        return self._act(run_id, lambda p: p.reject(run_id=run_id, reason=reason, actor=actor))

    def mark_payout_paid(self, run_id: str, *, reference: str, actor: str) -> inp.RunRecord:
        return self._act(
            run_id, lambda p: p.mark_paid(run_id=run_id, reference=reference, actor=actor)
        )

    def _act(self, run_id: str, command: Callable[[PayoutPeriod], None]) -> inp.RunRecord:
        found = self._payout_period(period_of_run(run_id))
        if found is None:
            raise NotFound(f"没有批次 {run_id}", f"no run {run_id}")
        command(found)
        self._save_period(found)
        return self.payout_run(run_id)

    def _save_period(self, aggregate: PayoutPeriod) -> None:
        """Save a period's new run or decision. When another request saved the same period
        in the meantime (two drafts computed at once, two auditors deciding at once), the log
        refuses the second save: that is a 409 to reload and try again, not a 500."""
        loaded_at = aggregate.version - len(aggregate.pending_events)
        try:
            self.log.save(aggregate)
        except IntegrityError:
            stored = self._payout_period(aggregate.period)
            if stored is None or stored.version <= loaded_at:
                raise  # not a concurrent change of this period
            raise PayoutRefused(
                f"批次期间 {aggregate.period} 刚刚被同时更新（另一个批次或审核决定已先记录），"
                "请刷新后重试",
                f"the runs of {aggregate.period} changed at the same moment (another run or "
                "decision was recorded first); reload and try again",
            ) from None

    def _payout_period(self, label: str) -> PayoutPeriod | None:
        try:
            found: PayoutPeriod = self.log.repository.get(ids.payout_period_id(label))
        except AggregateNotFoundError:
            return None
        return found

    def write_payslips(self, run_id: str, folder: Path) -> list[Path]:
        """A distribution run's payslips (one HTML per person, `CODE/STAFF.html`) and each
        institution's distribution sheet (`CODE.xlsx`), from what the run recorded."""
        run = self.payout_run(run_id)
        written: list[Path] = []
        for institution in self.distribution_results(run)["institutions"]:
            code = institution["code"]
            doc = self.distribution_doc(run, code)
            written.extend(payslips.write_payslips(doc, folder / code))
            written.append(payslips.write_distribution_sheet(doc, folder / f"{code}.xlsx"))
        return written

    def distribution_doc(self, run: inp.RunRecord, code: str) -> dict[str, Any]:
        """What a distribution run recorded for one institution, with the run's header and
        each person's equivalents by item: the document payslips and sheets are made from."""
        found = [i for i in self.distribution_results(run)["institutions"] if i["code"] == code]
        if not found:
            raise NotFound(
                f"批次 {run.run_id} 中没有机构 {code}",
                f"run {run.run_id} has no institution {code}",
            )
        period = Period.of(run.period.removeprefix(PERFORMANCE))
        with self.engine.connect() as conn:
            equivalents = performance.staff_equivalents(
                conn, self.equivalents_projection().t, code, period, run.position
            )
        return {
            **payouts.run_header(run),
            "period": period.label,
            "institution": {"code": code, "name": self._institution_name(code)},
            "distribution": found[0],
            "equivalents": equivalents,
        }

    @staticmethod
    def distribution_results(run: inp.RunRecord) -> dict[str, Any]:
        if run.ledger != "performance":
            raise PayoutRefused(
                f"{run.run_id} 不是绩效分配批次（支付单请用 payout statement）",
                f"{run.run_id} is not a distribution run (use payout statement for payouts)",
            )
        return run.results

    def statement_pdf(self, run_id: str, *, institutions: frozenset[str] | None = None) -> bytes:
        """A payout or fund run's statement (支付单 / 拨付单) as a PDF. With `institutions`
        (a clerk's), only their lines — of a fund run, the communities they belong to — and
        none of the county's totals."""
        run = self.payout_run(run_id)
        if run.ledger == "performance":
            raise PayoutRefused(
                f"{run_id} 是绩效分配批次：请打印工资条或分配表",
                f"{run_id} is a distribution run: print its payslips or sheets",
            )
        doc = payouts.run_json(run)
        if institutions is not None:
            codes = institutions
            if run.ledger == "insurance":
                with self.engine.connect() as conn:
                    found = communities_at(conn, run.position).values()
                codes = frozenset(c.code for c in found if institutions & set(c.members))
            doc = statement_html.narrow(doc, codes)
            if not doc["scope"]:
                raise NotFound(
                    f"批次 {run_id} 中没有机构 {'、'.join(sorted(institutions))} 的数据",
                    f"run {run_id} has no lines of {', '.join(sorted(institutions))}",
                )
        return pdf.html_to_pdf(statement_html.statement_html(doc))

    def payslips_pdf(self, run_id: str, institution: str, staff_id: str | None = None) -> bytes:
        """A distribution run's payslips (工资条) of one institution as a PDF, a page per
        person in the run's order — or one person's."""
        doc = self.distribution_doc(self.payout_run(run_id), institution)
        people = [str(s["staff_id"]) for s in doc["distribution"]["staff"]]
        if staff_id is not None:
            if staff_id not in people:
                raise NotFound(
                    f"批次 {run_id} 中机构 {institution} 没有职工 {staff_id}",
                    f"run {run_id} has no staff {staff_id} at {institution}",
                )
            people = [staff_id]
        return pdf.html_to_pdf(pdf.payslip_pages(doc, people))


def require_ended(period: Period, today: date, run: tuple[str, str]) -> None:
    """A run of a period is computed only after the period's last day."""
    if today <= period.last_day:
        raise PayoutRefused(
            f"{period.label} 尚未结束（截至 {period.last_day}），不能计算{run[0]}",
            f"{period.label} has not ended (it ends on {period.last_day}): "
            f"{run[1]} is computed after the period",
        )


RUNS_LOCK = "runs"  # held from `refuse_other_drafts` to the draft's append (`one_at_a_time`)


def refuse_other_drafts(runs: Iterable[inp.RunRecord], label: str) -> None:
    """One open draft per ledger: two open drafts could both carry the same adjustment and
    pay it twice. The caller holds `RUNS_LOCK` from this check to the draft's append."""
    open_drafts = [r.run_id for r in runs if r.state == "draft" and r.period != label]
    if open_drafts:
        raise PayoutRefused(
            f"请先审核或退回草稿批次 {', '.join(open_drafts)}",
            f"approve or reject the draft run(s) {', '.join(open_drafts)} first",
        )
