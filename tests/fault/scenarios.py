"""The five commands the fault tests kill, each with what it starts from, where a kill landed
(read from what the database holds afterwards) and what must hold after the kill, after a
re-run of the same command, and at the end (against an uninterrupted run of it).

Every check returns the problems it found as sentences (empty: all held), so a failing kill
point reports everything it saw at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fault.county import (
    APPROVAL_REFERENCE,
    AUDITOR,
    CHECKER,
    COUNTY,
    DRAFTED,
    IMPORTED,
    IMPORTED_BEHIND,
    IMPORTER,
    MAKER,
    RUN_ID,
    RUN_MONTH,
    CountyFiles,
    Template,
)
from tests.fault.forkserver import Outcome
from tests.fault.state import Snapshot, results_without_position

IMPORT_SUMMARY = re.compile(r"(\d+) rows, (\d+) new, (\d+) already present, (\d+) rejected")
CORRECTIONS_SUMMARY = re.compile(r"(\d+) rows, (\d+) corrected, (\d+) voided, (\d+) already")
FINISHED = "finished before the kill"


@dataclass(frozen=True)
class Scenario:
    name: str
    template: Template  # the database it starts from
    args: Callable[[CountyFiles], list[str]]
    where: Callable[[Snapshot, Snapshot, Outcome, CountyFiles], str]
    killed: Callable[[Snapshot, Snapshot, Snapshot, CountyFiles], list[str]]  # start, after, ref
    rerun: Callable[[Outcome, Snapshot, Snapshot, CountyFiles], list[str]]  # start, after


# ---- a service-record import ------------------------------------------------------------------


def _new_imports(start: Snapshot, after: Snapshot, kind: str) -> list[dict[str, Any]]:
    return [i for i in after.imports[len(start.imports) :] if i["kind"] == kind]


def _import_where(start: Snapshot, after: Snapshot, outcome: Outcome, files: CountyFiles) -> str:
    if not outcome.killed:
        return FINISHED
    new = len(after.recorded) - len(start.recorded)
    if _new_imports(start, after, "services"):
        return "after the last commit (the import recorded)"
    if new == 0:
        return "before the first batch committed"
    if new < files.sizes.records:
        return "between batches"
    return "after the last batch, before the import was recorded"


def _import_killed(
    start: Snapshot, after: Snapshot, ref: Snapshot, files: CountyFiles
) -> list[str]:
    problems = []
    new = [r for r in after.recorded if r not in set(start.recorded)]
    size, total = files.sizes.batch, files.sizes.records
    if len(new) % size and len(new) != total:
        problems.append(f"{len(new)} records present: not whole batches of {size}")
    # Batches are consecutive rows of the file: what is present is the file's first rows.
    if set(new) != set(files.ids(files.rows[: len(new)])):
        problems.append(f"the {len(new)} records present are not the file's first {len(new)}")
    return problems


def _import_rerun(
    outcome: Outcome, start: Snapshot, after: Snapshot, files: CountyFiles
) -> list[str]:
    found = IMPORT_SUMMARY.search(outcome.stdout)
    if outcome.returncode != 0 or not found:
        return [f"the re-run did not complete: {outcome}"]
    committed = len(after.recorded) - len(start.recorded)
    rows, new, present, rejected = map(int, found.groups())
    expected = (files.sizes.records, files.sizes.records - committed, committed, 0)
    if (rows, new, present, rejected) != expected:
        return [f"the re-run said {found.group(0)!r}; expected {expected} (rows, new, present)"]
    return []


# ---- a corrections import ---------------------------------------------------------------------


def _corrections_where(
    start: Snapshot, after: Snapshot, outcome: Outcome, files: CountyFiles
) -> str:
    if not outcome.killed:
        return FINISHED
    if _new_imports(start, after, "corrections"):
        return "after the last commit (the import recorded)"
    if after.change_events == start.change_events:
        return "before the corrections committed"
    return "after the corrections committed, before the import was recorded"


def _corrections_killed(
    start: Snapshot, after: Snapshot, ref: Snapshot, files: CountyFiles
) -> list[str]:
    made = after.change_events - start.change_events
    problems = []
    if made not in (0, files.sizes.corrections):
        problems.append(f"{made} of {files.sizes.corrections} corrections present: half a file")
    twice = [oid for oid, n in after.changes.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} record(s) corrected or voided twice")
    return problems


def _corrections_rerun(
    outcome: Outcome, start: Snapshot, after: Snapshot, files: CountyFiles
) -> list[str]:
    found = CORRECTIONS_SUMMARY.search(outcome.stdout)
    if outcome.returncode != 0 or not found:
        return [f"the re-run did not complete: {outcome}"]
    rows, corrected, voided, applied = map(int, found.groups())
    done = after.change_events > start.change_events
    expected_applied = rows if done else 0
    if rows != files.sizes.corrections or applied != expected_applied:
        return [f"the re-run said {found.group(0)!r}; {expected_applied} already applied expected"]
    if corrected + voided + applied != rows:
        return [f"the re-run's counts do not add up: {found.group(0)!r}"]
    return []


# ---- runs: a payout run and a staff distribution ----------------------------------------------


def _run_where(period: str) -> Callable[[Snapshot, Snapshot, Outcome, CountyFiles], str]:
    def where(start: Snapshot, after: Snapshot, outcome: Outcome, files: CountyFiles) -> str:
        if not outcome.killed:
            return FINISHED
        new = [r for r in after.runs_of(period) if r.run_id not in start.log_runs]
        if new:
            if after.model_position < new[0].recorded_at:
                return "after the run's commit, before the read models caught up"
            return "after the last commit"
        if after.positions == start.positions:
            return "before any commit"
        if all(after.positions[p] == start.head for p in _main_projections(after)):
            return "read models caught up, the run not yet recorded (computing)"
        return "during projection catch-up"

    return where


def _main_projections(s: Snapshot) -> list[str]:
    return [p for p in s.positions if p in ("registry", "inputs") or p.startswith("equivalents")]


def _run_killed(period: str) -> Callable[[Snapshot, Snapshot, Snapshot, CountyFiles], list[str]]:
    def killed(start: Snapshot, after: Snapshot, ref: Snapshot, files: CountyFiles) -> list[str]:
        new = [r for r in after.runs_of(period) if r.run_id not in start.log_runs]
        if not new:
            return []
        reference = ref.current_run(period)
        assert reference is not None
        problems = []
        if len(new) > 1 or new[0].state != "draft":
            problems.append(f"the killed run left {[(r.run_id, r.state) for r in new]}")
        if new[0].results_digest != reference.results_digest:
            problems.append(
                f"{new[0].run_id} as the killed run recorded it has results digest "
                f"{new[0].results_digest[:16]}; an uninterrupted run's has "
                f"{reference.results_digest[:16]}"
            )
        return problems

    return killed


def _run_rerun(period: str) -> Callable[[Outcome, Snapshot, Snapshot, CountyFiles], list[str]]:
    def rerun(outcome: Outcome, start: Snapshot, after: Snapshot, files: CountyFiles) -> list[str]:
        if outcome.returncode != 0:
            return [f"the re-run did not complete: {outcome}"]
        recorded = len(after.runs_of(period)) - len(start.runs_of(period))
        expected = f"{period}#{len(start.runs_of(period)) + recorded + 1}"
        if expected not in outcome.stdout:
            return [f"the re-run did not record {expected}: {outcome.stdout[:300]!r}"]
        return []

    return rerun


# ---- an approval ------------------------------------------------------------------------------


def _approval_where(start: Snapshot, after: Snapshot, outcome: Outcome, files: CountyFiles) -> str:
    if not outcome.killed:
        return FINISHED
    if after.log_runs[RUN_ID].state == "draft":
        return "before the approval committed"
    if any(after.positions[p] < after.head for p in _main_projections(after)):
        return "after the approval's commit, during projection catch-up"
    return "after the last commit"


def _approval_killed(
    start: Snapshot, after: Snapshot, ref: Snapshot, files: CountyFiles
) -> list[str]:
    run = after.log_runs[RUN_ID]
    if run.state == "draft" and not run.approvals:
        return []
    if run.state != "approved" or run.approvals != [(APPROVAL_REFERENCE, CHECKER)]:
        return [f"{RUN_ID} is {run.state} with approvals {run.approvals}"]
    return []


def _approval_rerun(
    outcome: Outcome, start: Snapshot, after: Snapshot, files: CountyFiles
) -> list[str]:
    if after.log_runs[RUN_ID].state == "draft":
        if outcome.returncode != 0:
            return [f"the re-run did not approve {RUN_ID}: {outcome}"]
        return []
    # Approved already: the re-run says so and changes nothing.
    if outcome.returncode == 1 and "is approved" in outcome.stderr:
        return []
    return [f"the re-run of an approval already recorded: {outcome}"]


# ---- the five ---------------------------------------------------------------------------------


SCENARIOS = {
    "import": Scenario(
        name="import",
        template=COUNTY,
        args=lambda f: [
            "import",
            str(f.services),
            "--batch-size",
            str(f.sizes.batch),
            "--actor",
            IMPORTER,
        ],
        where=_import_where,
        killed=_import_killed,
        rerun=_import_rerun,
    ),
    "corrections": Scenario(
        name="corrections",
        template=IMPORTED,
        args=lambda f: ["import", "--corrections", str(f.corrections), "--actor", AUDITOR],
        where=_corrections_where,
        killed=_corrections_killed,
        rerun=_corrections_rerun,
    ),
    "payout-run": Scenario(
        name="payout-run",
        template=IMPORTED_BEHIND,
        args=lambda f: ["payout", "run", "--month", RUN_MONTH.label, "--actor", MAKER],
        where=_run_where(RUN_MONTH.label),
        killed=_run_killed(RUN_MONTH.label),
        rerun=_run_rerun(RUN_MONTH.label),
    ),
    "approval": Scenario(
        name="approval",
        template=DRAFTED,
        args=lambda f: [
            "payout",
            "approve",
            RUN_ID,
            "--reference",
            APPROVAL_REFERENCE,
            "--actor",
            CHECKER,
        ],
        where=_approval_where,
        killed=_approval_killed,
        rerun=_approval_rerun,
    ),
    "distribution": Scenario(
        name="distribution",
        template=IMPORTED,
        args=lambda f: ["distribution", "run", "--year", "2024", "--actor", MAKER],
        where=_run_where("perf-2024"),
        killed=_run_killed("perf-2024"),
        rerun=_run_rerun("perf-2024"),
    ),
}


# ---- what holds after any kill, and at the end ------------------------------------------------


def always(s: Snapshot) -> list[str]:
    """What must hold in any state a kill can leave."""
    problems = list(s.cube_problems) + list(s.runs_problems)
    if len(s.recorded) != len(set(s.recorded)):
        problems.append(f"{len(s.recorded) - len(set(s.recorded))} service record(s) twice")
    for i in s.imports:
        if i["rows"] != i["inserted"] + i["already_present"] + i["rejected"]:
            problems.append(f"an import's counts do not add up: {i}")
    for run in s.log_runs.values():
        if len(run.approvals) > 1:
            problems.append(f"{run.run_id} approved {len(run.approvals)} times")
        if run.state in ("approved", "paid") and not run.approvals:
            problems.append(f"{run.run_id} is {run.state} with no approval")
    return problems


def same_outcome(final: Snapshot, ref: Snapshot) -> list[str]:
    """After the kill, the re-run and a catch-up: what an uninterrupted run ends with."""
    problems = always(final)
    behind = {p: final.positions[p] for p in _main_projections(final)}
    if any(pos != final.head for pos in behind.values()):
        problems.append(f"read models not at the log's head {final.head}: {behind}")
    if sorted(final.recorded) != sorted(ref.recorded):
        problems.append(
            f"{len(final.recorded)} service records, an uninterrupted run {len(ref.recorded)}"
        )
    if final.changes != ref.changes:
        problems.append(
            f"{final.change_events} corrections and voids, an uninterrupted run {ref.change_events}"
        )
    if final.cube_digest != ref.cube_digest:
        problems.append("the equivalents cube differs from an uninterrupted run's")
    periods = {r.period for r in [*ref.log_runs.values(), *final.log_runs.values()]}
    for period in sorted(periods):
        mine, theirs = final.current_run(period), ref.current_run(period)
        if mine is None or theirs is None:
            problems.append(f"{period}: {mine and mine.run_id} against {theirs and theirs.run_id}")
            continue
        if (mine.state, mine.approvals) != (theirs.state, theirs.approvals):
            problems.append(
                f"{mine.run_id} is {mine.state} {mine.approvals}; an uninterrupted run's "
                f"{theirs.run_id} {theirs.state} {theirs.approvals}"
            )
        if results_without_position(mine.results) != results_without_position(theirs.results):
            problems.append(f"{mine.run_id}'s results differ from {theirs.run_id}'s")
        if mine.position == theirs.position and mine.results_digest != theirs.results_digest:
            problems.append(f"{mine.run_id}'s results digest differs at the same position")
    superseded = [r.run_id for r in final.log_runs.values() if r.state == "superseded"]
    if len(superseded) > 1:
        problems.append(f"more than one run superseded: {superseded}")
    return problems
