"""The fault tests' own checks see damage: a batch with a record missing, a cube cell off by
one, a run the read model lost, a corrections file half applied. (Each is made by hand with
SQL on a copy of a starting database; SQLite is enough, the checks are the same SQL on both.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from tests.fault.conftest import Lab
from tests.fault.county import DRAFTED, IMPORTED, RUN_ID
from tests.fault.scenarios import SCENARIOS, always
from tests.fault.state import CORRECTED, snapshot

pytestmark = [pytest.mark.fault, pytest.mark.xdist_group("fault")]


@pytest.fixture
def imported(lab: Lab) -> Iterator[str]:
    url = lab.fresh("sqlite", IMPORTED)
    yield url
    lab.drop(url)


def sql(url: str, statement: str, *params: object) -> None:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        with conn:  # one transaction, committed
            conn.execute(statement, params)
    finally:
        conn.close()


def test_a_record_missing_from_a_batch_is_seen(lab: Lab, imported: str) -> None:
    files = lab.files
    start = lab.reference(SCENARIOS["import"], "sqlite").start
    first = files.ids(files.rows[:1])[0]
    sql(imported, "DELETE FROM stored_events WHERE originator_id = ?", first)
    after = snapshot(imported)
    problems = SCENARIOS["import"].killed(start, after, start, files)
    size, total = files.sizes.batch, files.sizes.records
    assert problems == [
        f"{total - 1} records present: not whole batches of {size}",
        f"the {total - 1} records present are not the file's first {total - 1}",
    ]
    # The cube was caught up with that record in it.
    assert [p for p in always(after) if "is not the log folded" in p]


def test_a_cube_cell_off_by_one_is_seen(imported: str) -> None:
    assert always(snapshot(imported)) == []
    sql(imported, "UPDATE eq_cube_a SET quantity_e4 = quantity_e4 + 1 WHERE rowid = 1")
    problems = always(snapshot(imported))
    assert len(problems) == 1 and "is not the log folded" in problems[0]


def test_half_a_corrections_file_is_seen(lab: Lab, imported: str) -> None:
    files = lab.files
    start = snapshot(imported)
    done = lab.run(imported, SCENARIOS["corrections"].args(files))
    assert done.returncode == 0, done
    sql(
        imported,
        "DELETE FROM stored_events WHERE rowid = "
        "(SELECT max(rowid) FROM stored_events WHERE topic = ?)",
        CORRECTED,
    )
    after = snapshot(imported)
    problems = SCENARIOS["corrections"].killed(start, after, start, files)
    count = files.sizes.corrections
    assert problems == [f"{count - 1} of {count} corrections present: half a file"]


def test_a_run_the_read_model_lost_is_seen(lab: Lab) -> None:
    url = lab.fresh("sqlite", DRAFTED)
    try:
        assert snapshot(url).runs_problems == []
        sql(url, "DELETE FROM inp_facts WHERE kind = 'payout_run' AND key = ?", RUN_ID)
        problems = snapshot(url).runs_problems
    finally:
        lab.drop(url)
    assert len(problems) == 1 and f"run {RUN_ID}: read model None != log ('draft'" in problems[0]
