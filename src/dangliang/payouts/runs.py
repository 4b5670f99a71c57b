"""Payout runs (支付批次) computed from the log: the run's results, adjustments for periods
already closed, replay, and the causes of every difference (docs/compensation.md, steps 10–11).

A run of period P at log position N:
- computes P through the compensation pipeline at N; a year-end settlement takes as advances
  what the approved monthly runs of that year actually paid (with their adjustments), not
  what the months would compute now;
- for every period Q closed by an approved run (an earlier month not covered by a settled
  year, or an earlier settled year) in which something changed since Q's run, adds a line per
  institution: `new amount − amount paid` (paid = Q's run plus adjustments already paid for Q),
  with the causes — which events since Q's run changed which figures. Paid runs are never
  edited; the difference is paid (or recovered) in P.
- `replay` recomputes a run at its own position, with the rule set it recorded
  (`rulesets`), and compares it with what it recorded.

Everything here is a function of (period, position): the same call at the same position gives
the same results, which is what makes a replay meaningful years later.

The closed periods and what was paid for them are in `paid_periods`; the adjustments and their
causes in `run_adjustments`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from dangliang.calculation import compensation as comp
from dangliang.domain.periods import Period
from dangliang.payouts.insurance_runs import run_json as insurance_run_json
from dangliang.payouts.paid_periods import gather
from dangliang.payouts.run_adjustments import adjustment_lines, causes, figure_changes
from dangliang.policy.bundle_loader import BUILTIN_BUNDLES
from dangliang.policy.subsidy_records import COMPONENTS, ZERO, yuan
from dangliang.projections import facts_queries as inp
from dangliang.projections.equivalents import EquivalentsTables

# ---- computing a run --------------------------------------------------------------------------


def compensation_runs(conn: Connection, position: int | None) -> dict[str, inp.RunRecord]:
    """The institution-compensation runs (not the staff distributions) up to `position`."""
    return {k: r for k, r in inp.runs_at(conn, position).items() if r.ledger == "compensation"}


def compute_run(
    conn: Connection, t: EquivalentsTables, period: Period, position: int
) -> dict[str, Any]:
    """The results a run of `period` at `position` records (deterministic, JSON-ready)."""
    runs = compensation_runs(conn, position)
    computation = comp.run(period, position, *gather(conn, t, period, position, runs))
    out = computation.as_json()
    lines = adjustment_lines(conn, t, period, position, runs)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in out["institutions"]:
        row.pop("warnings", None)
        own = lines.get(row["code"], [])
        adjustments = sum((Decimal(line["amount"]) for line in own), ZERO)
        base = Decimal(row["advances"] if period.month else row["settlement"])
        row["adjustments"] = str(yuan(adjustments))  # sums of fen amounts: exact, "0.00" if none
        row["adjustment_lines"] = own
        row["payable"] = str(yuan(base + adjustments))
        for key in (*COMPONENTS, "total", "advances", "settlement", "adjustments", "payable"):
            value = row["components"][key] if key in COMPONENTS else row[key]
            totals[key] += Decimal(value)
    out["totals"] = {k: str(v) for k, v in totals.items()}
    out.pop("county_steps", None)
    return out


def results_digest(results: Mapping[str, Any]) -> str:
    """sha256 of the results in canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(results, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical(results: Mapping[str, Any]) -> str:
    return json.dumps(results, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# ---- replay and diff --------------------------------------------------------------------------


def compare(recorded: Any, recomputed: Any, path: str = "") -> list[str]:
    """Every difference between two results, as `path: recorded != recomputed`."""
    if isinstance(recorded, Mapping) and isinstance(recomputed, Mapping):
        out = []
        for key in sorted(set(recorded) | set(recomputed)):
            out.extend(compare(recorded.get(key), recomputed.get(key), f"{path}.{key}".lstrip(".")))
        return out
    if isinstance(recorded, list) and isinstance(recomputed, list):
        if all(isinstance(r, Mapping) and "code" in r for r in recorded + recomputed):
            a = {r["code"]: r for r in recorded}
            b = {r["code"]: r for r in recomputed}
            return compare(a, b, path)
        if len(recorded) != len(recomputed):
            return [f"{path}: {len(recorded)} items != {len(recomputed)} items"]
        out = []
        for i, (x, y) in enumerate(zip(recorded, recomputed, strict=True)):
            out.extend(compare(x, y, f"{path}[{i}]"))
        return out
    if recorded != recomputed:
        return [f"{path}: recorded {recorded} != recomputed {recomputed}"]
    return []


def diff_runs(
    conn: Connection, t: EquivalentsTables, a: inp.RunRecord, b: inp.RunRecord
) -> dict[str, Any]:
    """What differs between two runs, per institution, and the events between their positions
    that explain it (for runs of the same period, or any two runs)."""
    first, second = (a, b) if a.position <= b.position else (b, a)
    rows_a = {r["code"]: r for r in first.results["institutions"]}
    out = []
    for row in second.results["institutions"]:
        old = rows_a.get(row["code"])
        if old is None:
            continue
        changes = figure_changes(old, row)
        if not changes and first.period == second.period:
            continue
        why = []
        if first.period == second.period and first.position != second.position:
            why = causes(
                conn,
                t,
                row["code"],
                Period.of(first.period),
                first.position,
                second.position,
                old,
                row,
            )[len(changes) :]
        out.append(
            {"code": row["code"], "name": row.get("name", ""), "changes": changes, "causes": why}
        )
    return {
        "from": {"run_id": first.run_id, "position": first.position},
        "to": {"run_id": second.run_id, "position": second.position},
        "institutions": out,
    }


def run_header(run: inp.RunRecord) -> dict[str, Any]:
    """Who computed, approved and paid a run, and what it stands on (any ledger)."""
    approved = next((h for h in run.history if h["state"] == "approved"), None)
    paid = next((h for h in run.history if h["state"] == "paid"), None)
    rejected = next((h for h in run.history if h["state"] == "rejected"), None)
    return {
        "run_id": run.run_id,
        "period": run.period,
        "kind": run.results.get("kind"),
        "state": run.state,
        "computed_by": run.computed_by,
        "computed_at": run.computed_at,
        "approved_by": approved["actor"] if approved else None,
        "approved_at": approved["at"] if approved else None,
        "approval_reference": approved["note"] if approved else None,
        "paid_reference": paid["note"] if paid else None,
        "rejected_reason": rejected["note"] if rejected else None,
        "supersedes": run.supersedes,
        "position": run.position,
        "position_recorded_at": run.position_recorded_at,
        "chain_head": run.chain_head,
        "policy": {"bundle": run.policy_bundle, "parameters_digest": run.parameters_digest},
        "results_digest": run.results_digest,
        "software": run.software,
        "rule_set": run.rule_set_label,
        "illustrative": run.policy_bundle.removesuffix(".yaml") in BUILTIN_BUNDLES,
    }


def run_json(run: inp.RunRecord) -> dict[str, Any]:
    """A payout run as one JSON document (statements, `payout show --json`, the API)."""
    if run.ledger == "insurance":
        return insurance_run_json(run, run_header(run))
    results = run.results
    return {
        **run_header(run),
        "institutions": [
            {
                k: row.get(k)
                for k in (
                    "code",
                    "name",
                    "components",
                    "total",
                    "advances",
                    "settlement",
                    "adjustments",
                    "payable",
                    "adjustment_lines",
                )
            }
            for row in results["institutions"]
        ],
        "totals": results["totals"],
    }
