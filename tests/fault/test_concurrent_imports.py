"""Several `dangliang import` processes started together on overlapping files, on SQLite and
PostgreSQL: every record stored exactly once, each process's counts adding up, the cube what
one import of the whole file gives, the hash chain intact.

The normal test run starts 2 imports; the full run (`DANGLIANG_FAULT_POINTS` set, see
test_killed_commands.py) starts 2 and 8. (tests/integration/test_concurrency.py has the
same for two imports with the library's own process start; these go through the fork
server, so eight start within milliseconds of each other.)
"""

from __future__ import annotations

import re
import time

import pytest

from tests.fault.conftest import BACKENDS, Lab
from tests.fault.county import full_run
from tests.fault.scenarios import SCENARIOS, same_outcome
from tests.fault.state import snapshot

pytestmark = [pytest.mark.fault, pytest.mark.xdist_group("fault")]

SUMMARY = re.compile(r"(\d+) rows, (\d+) new, (\d+) already present, (\d+) rejected")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("processes", [2, 8] if full_run() else [2])
def test_overlapping_imports_at_once_store_every_record_once(
    lab: Lab, backend: str, processes: int
) -> None:
    files = lab.files
    scenario = SCENARIOS["import"]
    reference = lab.reference(scenario, backend)  # one import of the whole file
    rows = files.rows
    # File i holds stretches i, i+1 and i+2 of n+2: each record is in one to three files,
    # neighbours share two thirds of their rows, together they hold every record.
    stretch = len(rows) // (processes + 2)
    parts = [
        rows[i * stretch : len(rows) if i == processes - 1 else (i + 3) * stretch]
        for i in range(processes)
    ]
    paths = [
        files.write(lab.scratch.parent / f"overlap-{processes}-{i}.csv", part)
        for i, part in enumerate(parts)
    ]
    url = lab.fresh(backend, scenario.template)
    started = time.monotonic()
    try:
        outcomes = lab.server.run(
            [
                lab.command(url, ["import", str(p), "--batch-size", str(files.sizes.batch)])
                for p in paths
            ]
        )
        counts = []
        for outcome in outcomes:
            found = SUMMARY.search(outcome.stdout)
            assert outcome.returncode == 0 and found, outcome
            counts.append(tuple(map(int, found.groups())))
        caught_up = lab.run(url, ["status"])
        assert caught_up.returncode == 0, caught_up
        final = snapshot(url)
        verified = lab.run(url, ["audit", "verify"])
    finally:
        lab.drop(url)
    lab.report.append(
        {
            "command": f"{processes} imports at once",
            "backend": backend,
            "counts": counts,  # (rows, new, already present, rejected) of each
            "slowest_import": round(max(o.elapsed for o in outcomes), 3),
            "seconds": round(time.monotonic() - started, 3),
        }
    )

    assert [c[0] for c in counts] == [len(p) for p in parts]
    assert sum(c[1] for c in counts) == len(rows)  # each record inserted by exactly one
    assert sum(c[2] for c in counts) == sum(map(len, parts)) - len(rows)  # the overlaps
    assert [c[3] for c in counts] == [0] * processes
    assert sorted(final.recorded) == sorted(files.ids(rows))
    new_imports = final.imports[len(reference.start.imports) :]
    assert sorted(i["file_name"] for i in new_imports) == sorted(p.name for p in paths)
    assert same_outcome(final, reference.final) == []
    assert verified.returncode == 0, verified
