"""`kill -9` of the `dangliang` command at seeded moments, on SQLite and PostgreSQL: a
service-record import, a corrections import, a payout run, an approval and a staff
distribution run.

Each command is first run uninterrupted on a copy of its starting database, its commits
watched (its duration and its commits place the kill points; its end state is what every
killed-and-re-run copy must end with). Then, at each kill point, on a fresh copy: the command
is started and SIGKILLed — as soon as its j-th commit is seen, or that many seconds in; what
the database holds is read with plain SQL and checked (whole batches only, the file's first
ones, each record at most once, no half-applied corrections file, no half-approved run, the
cube and the runs' read model equal to the log folded up to their positions); `audit verify`
must pass; the same command is run again and must complete with the counts the kill implies;
after a catch-up the county must be what the uninterrupted run left (the same records,
corrections, cube, runs and their results).

The normal test run kills each command at 1 seeded point per backend (after a seeded commit)
on a small county (4,000 records, batches of 250) and verifies the chain once, after the
re-run. The full run — 20 points each (10 after seeded commits, 10 at seeded moments, the
very start and end among them), on a county where each command takes one to three seconds
(60,000 records, batches of 2,000), the chain verified after the kill too, and 2 and 8
concurrent imports — is opt-in:

    DANGLIANG_FAULT_POINTS=20 .venv/bin/python -m pytest tests/fault -n 0

(`DANGLIANG_FAULT_SEED` draws other kill points, `DANGLIANG_FAULT_REPORT=FILE` writes where
each kill landed; docs/reliability.md has the figures of the last full run.)
"""

from __future__ import annotations

import time

import pytest

from tests.fault.conftest import BACKENDS, Lab
from tests.fault.county import full_run, points_wanted
from tests.fault.scenarios import SCENARIOS, always, same_outcome
from tests.fault.state import snapshot

pytestmark = [pytest.mark.fault, pytest.mark.xdist_group("fault")]


class Stopwatch:
    """`clock(name)`: the seconds since the last call, kept under `name`."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into
        self.last = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self.into[name] = round(now - self.last, 3)
        self.last = now


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.parametrize("point", range(points_wanted()))
def test_a_killed_command_leaves_whole_commits_and_a_rerun_completes_it(
    lab: Lab, name: str, backend: str, point: int
) -> None:
    scenario = SCENARIOS[name]
    files = lab.files
    reference = lab.reference(scenario, backend)
    kill = lab.kill_points(scenario, backend)[point]
    when = kill.describe(reference)
    args = scenario.args(files)
    steps: dict[str, float] = {}
    clock = Stopwatch(steps)
    url = lab.fresh(backend, scenario.template)
    clock("copy")
    try:
        killed = lab.run_killed(url, args, kill, reference.seconds)
        assert killed.returncode in (0, -9), killed  # 0: it finished before the kill
        clock("killed run")
        lab.settle(url)
        after = snapshot(url)
        where = scenario.where(reference.start, after, killed, files)
        problems = always(after) + scenario.killed(reference.start, after, reference.final, files)
        clock("checks after the kill")
        if full_run():  # the quick run verifies once, after the re-run (the whole log)
            verified = lab.run(url, ["audit", "verify"])
            if verified.returncode != 0:
                problems.append(f"audit verify after the kill: {verified}")
            clock("verify")

        rerun = lab.run(url, args)
        problems += scenario.rerun(rerun, reference.start, after, files)
        clock("re-run")
        caught_up = lab.run(url, ["status"])
        assert caught_up.returncode == 0, caught_up
        clock("catch-up")
        final = snapshot(url)
        problems += same_outcome(final, reference.final)
        clock("final checks")
        verified = lab.run(url, ["audit", "verify"])
        if verified.returncode != 0:
            problems.append(f"audit verify after the re-run: {verified}")
        clock("verify")
    finally:
        lab.drop(url)
        clock("drop")
    lab.report.append(
        {
            "command": name,
            "backend": backend,
            "point": point,
            "kill": when,
            "fraction": kill.fraction,
            "after_commit": kill.after_commit,
            "commits": len(reference.commits),
            "seconds_before_kill": round(killed.elapsed, 3),
            "killed": killed.killed,
            "where": where,
            "records_after_kill": len(after.recorded) - len(reference.start.recorded),
            "problems": problems,
            "steps": steps,
        }
    )
    assert problems == [], f"killed {when} ({where}):\n" + "\n".join(problems)
