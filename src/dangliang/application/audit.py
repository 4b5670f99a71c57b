"""Audit (审计): replay a run from the log as it stood, compare two runs, verify the log's
hash chain against the chain kept as events were recorded and the heads runs recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dangliang.application.core import Core
from dangliang.domain.errors import InvalidValue
from dangliang.domain.payout import PayoutRefused, bare_period
from dangliang.domain.periods import Period
from dangliang.ledger.chain import chain_head, format_head, parse_head
from dangliang.ledger.chain_verification import verify as chain_verify
from dangliang.payouts import rulesets
from dangliang.payouts import runs as payouts
from dangliang.projections import facts_queries as inp


class Audit(Core):
    def replay_payout(self, run_id: str) -> dict[str, Any]:
        """Recompute a run from the log as it stood at the run's position, with the rule set
        the run recorded (never today's, unless that is the one), and compare it with what the
        run recorded: identical to the fen, or every difference listed. A rule set this
        software does not have is refused (`rulesets.UnknownRuleSet`)."""
        run = self.payout_run(run_id)
        rules = rulesets.rule_set(run.ledger, run.rule_set)
        t = self.equivalents_projection().t
        period = Period.of(bare_period(run.period))
        with self.engine.connect() as conn:
            again = rules.compute_run(conn, t, period, run.position)
            _, head = chain_head(conn, run.position)
        differences = payouts.compare(run.results, again)
        digest_ok = payouts.results_digest(run.results) == run.results_digest
        return {
            "run_id": run_id,
            "position": run.position,
            "rule_set": rules.label,
            "rule_set_current": rulesets.current(run.ledger).label,
            "identical": not differences and digest_ok and head == run.chain_head,
            "differences": differences,
            "results_digest_ok": digest_ok,
            "chain_head_recorded": run.chain_head,
            "chain_head_now": head,
        }

    def diff_payouts(self, run_a: str, run_b: str) -> dict[str, Any]:
        a, b = self.payout_run(run_a), self.payout_run(run_b)
        if a.ledger == b.ledger == "insurance":
            first, second = (a, b) if a.position <= b.position else (b, a)
            return {
                "from": {"run_id": first.run_id, "position": first.position},
                "to": {"run_id": second.run_id, "position": second.position},
                "differences": payouts.compare(first.results, second.results),
            }
        for run in (a, b):
            if run.ledger != "compensation":
                raise PayoutRefused(
                    f"{run.run_id} 与 {b.run_id if run is a else a.run_id} 不是同类批次，"
                    "或是绩效分配批次：只能比较同类支付批次",
                    f"{run.run_id} is a distribution run or of another ledger: only payout "
                    "runs of one ledger can be compared",
                )
        with self.engine.connect() as conn:
            return payouts.diff_runs(conn, self.equivalents_projection().t, a, b)

    def verify_log(
        self,
        *,
        expected_head: tuple[int, str] | str | None = None,
        progress: Callable[[int, int], Any] | None = None,
    ) -> dict[str, Any]:
        """Recompute the hash chain over the stored events and compare it with the chain kept
        as they were recorded. Every payout run's recorded chain head (and `expected_head`,
        from a signed document) is checked against the chain recomputed from the log itself,
        so a log edited and re-chained is caught too. `expected_head` may be the text printed
        on a document (`POSITION:SHA256`); a malformed one is refused (InvalidValue)."""
        if isinstance(expected_head, str):
            try:
                expected_head = parse_head(expected_head)
            except ValueError as e:
                raise InvalidValue(str(e), str(e)) from None
        # The chain is read as it is stored: never extended here (every write sealed what it
        # appended), so nothing changed since can be sealed as if it were the original.
        with self.engine.connect() as conn:
            runs = inp.runs_at(conn)
            run_heads = {r.run_id: (r.position, r.chain_head) for r in runs.values()}
            report = chain_verify(
                conn,
                self.log,
                expected_head=expected_head,
                expected_heads=sorted(set(run_heads.values())),
                progress=progress,
            )
        lines = []
        ok = report.ok
        if report.ok:
            lines.append(
                f"哈希链完整 / chain intact: {report.checked:,} events checked, head "
                f"{format_head(report.head)}; {len(run_heads)} payout run head(s) match"
            )
        for first_id, last_id, count, sealed_at, who, why in report.late_seals:
            lines.append(
                f"事后封存 / sealed late: events {first_id}–{last_id} ({count:,}) on {sealed_at} "
                f"by {who} ({why}); the chain vouches for them only from then"
            )
        else:
            for problem in report.problems:
                lines.append(f"#{problem.notification_id} {problem.kind}: {problem.message}")
            if report.problem_count > len(report.problems):
                lines.append(f"… {report.problem_count - len(report.problems)} more")
        for run_id, (at, head) in sorted(run_heads.items()):
            recomputed = report.recomputed_at.get(at)
            if recomputed is not None and recomputed != head:
                ok = False
                lines.append(
                    f"批次 {run_id} 记录的链头与日志不符 / run {run_id} recorded chain head "
                    f"{head} at position {at}; the log now gives {recomputed}"
                )
        first = report.first_problem
        return {
            "ok": ok,
            "checked": report.checked,
            "head": format_head(report.head),
            "unchained": report.unchained,
            "first_problem": None
            if first is None
            else {
                "kind": first.kind,
                "notification_id": first.notification_id,
                "originator_id": first.originator_id,
                "originator_version": first.originator_version,
                "topic": first.topic,
                "message": first.message,
            },
            "problem_count": report.problem_count,
            "runs_checked": len(run_heads),
            "late_seals": [
                {"first": a, "last": b, "events": n, "sealed_at": at, "actor": who, "reason": why}
                for a, b, n, at, who, why in report.late_seals
            ],
            "lines": lines,
        }

    def seal_unsealed(self, actor: str, reason: str) -> dict[str, Any]:
        """`audit seal`: seal the events stored but never sealed (written by a version that
        chained later, or around dangliang) as they are now, and record who did it, when and
        why. Run it only after checking those events (`audit verify` names them): from here
        on the chain vouches for them as they stand."""
        if not reason.strip():
            raise InvalidValue(
                "封存须说明原因（例如：升级前写入的事件，已核对）",
                "sealing needs a reason (e.g. events written before the upgrade, checked)",
            )
        count, first, last = self.log.seal_late(actor, reason.strip())
        return {"sealed": count, "first": first, "last": last}
