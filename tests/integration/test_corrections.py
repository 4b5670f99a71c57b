"""Corrections and voids (更正与作废) of imported service records, on SQLite and PostgreSQL,
through `Dangliang.import_corrections` and the `dangliang import --corrections` command."""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.utils import get_topic

from dangliang.application import Dangliang, bootstrap
from dangliang.demo.generator import GeneratedCounty
from dangliang.domain.ids import service_record_id
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.domain.service import ServiceRecord
from dangliang.importers.formats import CORRECTIONS
from dangliang.settings import Settings
from tests.conftest import DANGLIANG_CLI, Prepare, load_reference

TODAY = date(2025, 1, 31)
ACTOR = "稽核员 auditor"
CORRECTED = get_topic(ServiceRecord.Corrected)
VOIDED = get_topic(ServiceRecord.Voided)
COLUMNS = list(CORRECTIONS.column_names)
DANGLIANG = DANGLIANG_CLI


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_corrections(path: Path, rows: Iterable[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, restval="")
        w.writeheader()
        w.writerows(rows)
    return path


def row_for(record: dict[str, str], action: str, reason: str, **values: str) -> dict[str, str]:
    return {
        "institution_code": record["institution_code"],
        "source_id": record["source_id"],
        "action": action,
        "reason": reason,
        **values,
    }


def get(app: Dangliang, record: dict[str, str]) -> ServiceRecord:
    return app.log.repository.get(
        service_record_id(record["institution_code"], record["source_id"])
    )


def cells(problems: Iterable[Problem]) -> set[tuple[int | None, str | None]]:
    return {(p.row, p.column) for p in problems}


@dataclass
class Imported:
    app: Dangliang
    rows: list[dict[str, str]]
    quantity: dict[str, str]  # a record with quantity 1
    compliant: dict[str, str]  # a compliant public-health record
    void: dict[str, str]  # a record to void
    others: list[dict[str, str]]  # untouched records
    db_url: str  # the database the app writes to


@pytest.fixture
def imported(prepared_url: Prepare, county: GeneratedCounty) -> Iterator[Imported]:
    db_url = prepared_url("reference", lambda a: load_reference(a, county))
    app = bootstrap(Settings(db_url))
    result = app.import_services(county.files["services"], actor="importer", today=TODAY)
    assert result.inserted == 3000
    rows = read_rows(county.files["services"])
    quantity = next(r for r in rows if r["quantity"] == "1" and r["item_code"].startswith("BM"))
    compliant = next(
        r for r in rows if r["item_code"].startswith("PH") and r["compliant"] == "true"
    )
    void = rows[100]
    used = {id(quantity), id(compliant), id(void)}
    others = [r for r in rows[200:] if id(r) not in used]
    try:
        yield Imported(app, rows, quantity, compliant, void, others, db_url)
    finally:
        app.close()


def first_file(tmp_path: Path, data: Imported) -> Path:
    return write_corrections(
        tmp_path / "corrections.csv",
        [
            row_for(data.quantity, "correct", "HIS 录入错误：数量应为 3", quantity="3"),
            row_for(data.compliant, "correct", "抽查不达标", compliant="false"),
            row_for(data.void, "作废", "重复上报"),  # the Chinese spelling of void
        ],
    )


def test_corrections_change_the_records_and_say_why_and_who(
    imported: Imported, tmp_path: Path
) -> None:
    app = imported.app
    head = app.log.head()

    result = app.import_corrections(first_file(tmp_path, imported), actor=ACTOR, today=TODAY)

    assert (result.rows, result.corrected, result.voided, result.already_applied) == (3, 2, 1, 0)
    assert app.log.head() == head + 3 + 1  # three changes and the import's audit event

    q = get(app, imported.quantity)
    assert (q.version, q.quantity, q.voided) == (2, Decimal("3"), False)
    assert (q.item_code, q.staff_id, q.service_date, q.compliant) == (
        imported.quantity["item_code"],
        imported.quantity["staff_id"],
        date.fromisoformat(imported.quantity["service_date"]),
        True,
    )
    c = get(app, imported.compliant)
    assert (c.version, c.compliant, c.voided) == (2, False, False)
    assert c.quantity == Decimal(imported.compliant["quantity"])
    v = get(app, imported.void)
    assert (v.version, v.voided) == (2, True)
    assert v.quantity == Decimal(imported.void["quantity"])  # the facts stay as they were
    for other in imported.others[:20]:
        assert get(app, other).version == 1

    def last_event(record: dict[str, str]) -> Any:
        stored = app.log.app_recorder.select_events(
            service_record_id(record["institution_code"], record["source_id"])
        )
        assert [s.originator_version for s in stored] == [1, 2]
        return stored[-1]

    stored_q = last_event(imported.quantity)
    assert stored_q.topic == CORRECTED
    event_q: Any = app.log.mapper.to_domain_event(stored_q)
    assert (event_q.reason, event_q.actor) == ("HIS 录入错误：数量应为 3", ACTOR)
    # a correction carries the full new values, not only the changed one
    assert (event_q.quantity, event_q.item_code, event_q.staff_id, event_q.compliant) == (
        Decimal("3"),
        imported.quantity["item_code"],
        imported.quantity["staff_id"],
        True,
    )
    stored_c = last_event(imported.compliant)
    assert stored_c.topic == CORRECTED
    event_c: Any = app.log.mapper.to_domain_event(stored_c)
    assert (event_c.compliant, event_c.reason, event_c.actor) == (False, "抽查不达标", ACTOR)
    stored_v = last_event(imported.void)
    assert stored_v.topic == VOIDED
    event_v: Any = app.log.mapper.to_domain_event(stored_v)
    assert (event_v.reason, event_v.actor) == ("重复上报", ACTOR)

    # -- the same file again changes nothing
    head = app.log.head()
    again = app.import_corrections(
        first_file(tmp_path, imported), actor="someone else", today=TODAY
    )
    assert (again.rows, again.corrected, again.voided, again.already_applied) == (3, 0, 0, 3)
    assert app.log.head() == head + 1  # only the audit event of the second import
    assert get(app, imported.quantity).version == 2
    assert get(app, imported.void).version == 2


def test_a_corrections_file_with_any_bad_row_is_refused_whole(
    imported: Imported, tmp_path: Path
) -> None:
    app = imported.app
    app.import_corrections(first_file(tmp_path, imported), actor=ACTOR, today=TODAY)
    head = app.log.head()
    good, blank, elsewhere, void_with_value, twice, later, unknown_item = imported.others[:7]
    foreign = next(
        r for r in imported.rows if r["institution_code"] != elsewhere["institution_code"]
    )
    rows = [
        row_for(good, "correct", "ok", quantity="2"),  # 2: fine on its own
        row_for(imported.void, "correct", "too late", quantity="2"),  # 3: voided record
        row_for(
            {"institution_code": good["institution_code"], "source_id": "NO-SUCH-RECORD"},
            "void",
            "unknown",
        ),  # 4: unknown record
        row_for(blank, "correct", "nothing given"),  # 5: no new values
        row_for(elsewhere, "correct", "other staff", staff_id=foreign["staff_id"]),  # 6
        row_for(void_with_value, "void", "void with a value", quantity="2"),  # 7
        row_for(twice, "correct", "first", quantity="2"),  # 8
        row_for(twice, "void", "second"),  # 9: the same record again
        row_for(later, "correct", "future", service_date="2025-02-01"),  # 10: after today
        row_for(unknown_item, "correct", "no such item", item_code="XX999"),  # 11
    ]
    path = write_corrections(tmp_path / "bad.csv", rows)

    with pytest.raises(ProblemsFound) as caught:
        app.import_corrections(path, actor=ACTOR, today=TODAY)

    problems = caught.value.problems
    assert cells(problems) == {
        (3, "action"),
        (4, "source_id"),
        (5, "action"),
        (6, "staff_id"),
        (7, "quantity"),
        (9, "source_id"),
        (10, "service_date"),
        (11, "item_code"),
    }
    assert len(problems) == 8
    by_row = {p.row: p for p in problems}
    assert all(p.file == str(path) for p in problems)
    assert "voided" in by_row[3].message_en
    assert "NO-SUCH-RECORD" in by_row[4].message_en
    assert "at least one new value" in by_row[5].message_en
    assert foreign["staff_id"] in by_row[6].message_en
    assert elsewhere["institution_code"] in by_row[6].message_en
    assert "row 8" in by_row[9].message_en
    assert "future" in by_row[10].message_en
    assert "XX999" in by_row[11].message_en
    # nothing written, not even the good rows
    assert app.log.head() == head
    for r in (good, blank, elsewhere, void_with_value, twice, later, unknown_item):
        assert get(app, r).version == 1
    assert get(app, imported.void).version == 2


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DANGLIANG), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_cli_import_corrections(imported: Imported, tmp_path: Path) -> None:
    app, db_url = imported.app, imported.db_url
    path = first_file(tmp_path, imported)
    head = app.log.head()

    done = run_cli("import", "--corrections", path, "--db", db_url, "--actor", "cli auditor")

    assert done.returncode == 0, done.stderr
    assert "3 rows, 2 corrected, 1 voided, 0 already applied" in done.stdout
    assert app.log.head() == head + 3 + 1  # three changes and the import's audit event
    event: Any = app.log.mapper.to_domain_event(
        app.log.app_recorder.select_events(
            service_record_id(imported.void["institution_code"], imported.void["source_id"])
        )[-1]
    )
    assert event.actor == "cli auditor"

    bad = write_corrections(
        tmp_path / "bad.csv",
        [
            row_for(imported.others[0], "correct", "ok", quantity="2"),
            row_for(imported.void, "correct", "voided", quantity="2"),
            row_for(imported.others[1], "void", "void with a value", staff_id="S00001"),
        ],
    )
    head = app.log.head()
    refused = run_cli("import", "--corrections", bad, "--db", db_url, "--actor", "cli auditor")

    assert refused.returncode == 1
    assert f"{bad}:3:action:" in refused.stderr
    assert f"{bad}:4:staff_id:" in refused.stderr
    lines = [line for line in refused.stderr.splitlines() if line.startswith(f"{bad}:")]
    assert len(lines) == 2
    assert "nothing was written" in refused.stderr
    assert app.log.head() == head
