"""Importing service records and reference data, on SQLite and on PostgreSQL.

Only public behaviour is used: the `Dangliang` service methods and the event log
(`app.log.repository`, `app.log.app_recorder`, `app.log.mapper`), so the tests hold whatever
the importer does inside.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.utils import get_topic

from dangliang.application import Dangliang
from dangliang.demo.generator import GeneratedCounty, generate
from dangliang.domain.catalogue import CatalogueItem
from dangliang.domain.ids import catalogue_item_id, service_record_id
from dangliang.domain.imports import BulkImport, DataImport
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.domain.service import ServiceRecord
from dangliang.importers.formats import CATALOGUE, SERVICES
from dangliang.ledger import batch_seal, bulk
from dangliang.ledger.compact import SERVICE_RECORD_TOPIC
from tests.conftest import load_reference

TODAY = date(2025, 1, 31)  # after every generated service date (the county is 2024)
ACTOR = "导入员 tester"  # non-ASCII on purpose: the stored JSON must match the library's
RECORDED = get_topic(ServiceRecord.Recorded)
COMPLETED = get_topic(DataImport.Completed)
STARTED = get_topic(BulkImport.Started)
BATCH = get_topic(BulkImport.BatchWritten)
VALUE_SET = get_topic(CatalogueItem.ValueSet)
COLUMNS = list(SERVICES.column_names)


# ---- helpers ----------------------------------------------------------------------------


def read_rows(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as f:
        return list(csv.DictReader(f))


def write_rows(
    path: Path, rows: Iterable[dict[str, str]], columns: Sequence[str] = COLUMNS
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, list(columns))
        w.writeheader()
        w.writerows(rows)
    return path


def notifications(app: Dangliang, topic: str | None = None, start: int = 1) -> list[Any]:
    """Every notification from `start` (optionally of one topic), read in pages."""
    out: list[Any] = []
    topics = [topic] if topic else []
    while True:
        page = app.log.app_recorder.select_notifications(start=start, limit=5_000, topics=topics)
        out.extend(page)
        if len(page) < 5_000:
            return out
        start = page[-1].id + 1


def recorded_events(app: Dangliang) -> dict[UUID, Any]:
    """Every stored `Recorded` event, decoded, by aggregate id."""
    events = (
        app.log.mapper.to_domain_event(n)
        for topic in (RECORDED, SERVICE_RECORD_TOPIC)
        for n in notifications(app, topic)
    )
    return {e.originator_id: e for e in events}


def expected_quantity(text: str) -> Decimal:
    return Decimal(text.strip())


def expected_compliant(text: str | None) -> bool:
    return (text or "").strip().lower() not in ("false", "no", "n", "0", "否", "不达标")


def problem_cells(problems: Sequence[Problem]) -> set[tuple[int | None, str | None]]:
    return {(p.row, p.column) for p in problems}


def the_problem(problems: Sequence[Problem], row: int, column: str) -> Problem:
    found = [p for p in problems if (p.row, p.column) == (row, column)]
    assert len(found) == 1, f"expected one problem at row {row}, {column}: {problems}"
    return found[0]


@pytest.fixture
def loaded(reference_app: Dangliang) -> Dangliang:
    return reference_app


@pytest.fixture
def county_rows(county: GeneratedCounty) -> list[dict[str, str]]:
    return read_rows(county.files["services"])


# ---- the generated county ---------------------------------------------------------------


def assert_stored_as_the_aggregate_would(
    app: Dangliang, row: dict[str, str], import_ref: str
) -> None:
    """The stored Recorded event of `row` is in the compact form and reads back, through the
    log's mapper, as exactly the event the aggregate itself produces (given the time of the
    stored event's batch)."""
    rid = service_record_id(row["institution_code"], row["source_id"])
    stored = list(app.log.app_recorder.select_events(rid))
    assert len(stored) == 1, row
    [stored_event] = stored
    decoded: Any = app.log.mapper.to_domain_event(stored_event)

    aggregate = ServiceRecord.record(
        institution_code=row["institution_code"],
        source_id=row["source_id"],
        staff_id=row["staff_id"],
        item_code=row["item_code"],
        quantity=Decimal(row["quantity"]),
        service_date=date.fromisoformat(row["service_date"]),
        patient_ref=row["patient_ref"] or None,
        compliant=expected_compliant(row["compliant"]),
        actor=ACTOR,
        import_ref=import_ref,
    )
    [event] = aggregate.collect_events()
    object.__setattr__(event, "timestamp", decoded.timestamp)

    assert stored_event.originator_id == event.originator_id == rid
    assert stored_event.originator_version == event.originator_version == 1
    assert stored_event.topic == SERVICE_RECORD_TOPIC
    assert type(decoded) is ServiceRecord.Recorded
    assert vars(decoded) == vars(event), row
    # the batch's own event comes first in the log, and says the time
    batch: Any = app.log.mapper.to_domain_event(
        app.log.app_recorder.select_notifications(
            start=json.loads(bytes(stored_event.state))[0], limit=1
        )[0]
    )
    assert isinstance(batch, BulkImport.BatchWritten)
    assert batch.timestamp == decoded.timestamp


def test_county_import_stores_every_row_as_the_aggregate_would_and_reimport_adds_nothing(
    loaded: Dangliang, county: GeneratedCounty, county_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    app = loaded
    head = app.log.head()
    result = app.import_services(county.files["services"], actor=ACTOR, today=TODAY)

    # -- counts and the audit trail
    assert (result.rows, result.inserted, result.already_present, result.rejected) == (
        3000,
        3000,
        0,
        0,
    )
    assert result.problems == []
    assert result.import_ref.startswith("sha256:")
    assert len(county_rows) == 3000
    # the import's own events: started, one batch (before its records), completed
    assert app.log.head() == head + 2 + 3000 + 1
    first = notifications(app, start=head + 1)[:2]
    assert [n.topic for n in first] == [STARTED, BATCH]
    started: Any = app.log.mapper.to_domain_event(first[0])
    assert (started.kind, started.import_ref, started.actor) == (
        "services",
        result.import_ref,
        ACTOR,
    )
    last = notifications(app, start=app.log.head())
    assert [n.topic for n in last] == [COMPLETED]
    audit: Any = app.log.mapper.to_domain_event(last[0])
    assert (audit.kind, audit.file_name, audit.import_ref, audit.actor) == (
        "services",
        county.files["services"].name,
        result.import_ref,
        ACTOR,
    )
    assert (audit.rows, audit.inserted, audit.already_present, audit.rejected) == (
        3000,
        3000,
        0,
        0,
    )

    # -- every row is a loadable record with the row's values
    events = recorded_events(app)
    assert len(events) == 3000
    for row in county_rows:
        rid = service_record_id(row["institution_code"], row["source_id"])
        record: ServiceRecord = app.log.repository.get(rid)
        assert record.version == 1
        assert record.institution_code == row["institution_code"]
        assert record.source_id == row["source_id"]
        assert record.staff_id == row["staff_id"]
        assert record.item_code == row["item_code"]
        assert isinstance(record.quantity, Decimal)
        assert record.quantity == expected_quantity(row["quantity"])
        assert type(record.service_date) is date
        assert record.service_date == date.fromisoformat(row["service_date"])
        assert record.patient_ref == (row["patient_ref"] or None)
        assert record.compliant is expected_compliant(row["compliant"])
        assert record.voided is False
        event = events[rid]
        assert event.actor == ACTOR
        assert event.import_ref == result.import_ref
    # blank means compliant; explicit non-compliance is kept
    assert any(r["compliant"] == "" for r in county_rows)
    assert any(r["compliant"] == "false" for r in county_rows)

    # -- the stored events are the very bytes the aggregate's own events map to
    sample = county_rows[::97]
    sample += [r for r in county_rows if r["compliant"] == "false"][:5]
    sample += [r for r in county_rows if r["quantity"] != "1"][:5]
    sample += [r for r in county_rows if "V" in r["institution_code"]][:5]
    for row in sample:
        assert_stored_as_the_aggregate_would(app, row, result.import_ref)

    # -- the same file again: nothing but one more audit event
    head = app.log.head()
    again = app.import_services(county.files["services"], actor="someone else", today=TODAY)
    assert (again.rows, again.inserted, again.already_present, again.rejected) == (
        3000,
        0,
        3000,
        0,
    )
    assert again.import_ref == result.import_ref
    assert app.log.head() == head + 1
    assert [n.topic for n in notifications(app, start=head + 1)] == [COMPLETED]
    assert len(notifications(app, SERVICE_RECORD_TOPIC)) == 3000

    # -- awkward values: text that is not canonical, strings JSON must escape
    base = county_rows[0]
    awkward = [
        ("2.50", 'P"quoted"', "true"),
        ("1e1", "P\\back\\slash", "是"),
        ("010", '患者,"actor":"x"', "no"),
        ("0.0001", "tab\there", "达标"),
        ("3.1400", "emoji 🩺 and \u2028 separator", "0"),
        ("7", "", ""),
    ]
    rows = [
        dict(base, source_id=f'来源-{n}/"{n}"', quantity=q, patient_ref=p, compliant=c)
        for n, (q, p, c) in enumerate(awkward)
    ]
    path = write_rows(tmp_path / "awkward.csv", rows)
    odd = app.import_services(path, actor=ACTOR, today=TODAY)
    assert (odd.inserted, odd.already_present) == (len(rows), 0)
    for row in rows:
        assert_stored_as_the_aggregate_would(app, row, odd.import_ref)
        record = app.log.repository.get(
            service_record_id(row["institution_code"], row["source_id"])
        )
        assert record.quantity == Decimal(row["quantity"])
        assert record.patient_ref == (row["patient_ref"] or None)


# ---- refusals ---------------------------------------------------------------------------


def test_a_file_with_bad_rows_is_refused_whole_with_every_problem(
    loaded: Dangliang, county_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    app = loaded
    today = date(2024, 6, 30)
    good = [r for r in county_rows if r["service_date"] <= "2024-01-31"][:8]
    late = county_rows[-1]  # 2024-12-31: after `today`
    assert late["service_date"] > today.isoformat()
    other_inst = next(
        r["institution_code"]
        for r in county_rows
        if r["institution_code"] != good[3]["institution_code"]
    )
    rows = [
        good[0],  # 2
        dict(good[1], institution_code="ZZ99"),  # 3 unknown institution
        dict(good[2], item_code="XX999"),  # 4 unknown item
        dict(good[3], institution_code=other_inst),  # 5 staff not at that institution
        good[4],  # 6
        late,  # 7 future date
        dict(good[5], service_date="2024-02-30"),  # 8 bad date
        dict(good[6], quantity="0"),  # 9 non-positive quantity
        dict(good[7], quantity="-2"),  # 10 non-positive quantity
        dict(good[1], source_id="NEW-1", quantity="1,5x"),  # 11 malformed decimal
        dict(good[1], source_id="NEW-2", quantity="1.23456"),  # 12 more than 4 places
        good[4],  # 13 duplicate of row 6 (same content)
        dict(good[0], quantity="2"),  # 14 duplicate of row 2 (other content)
        dict(good[2], source_id="NEW-3", quantity="1E+30"),  # 15 absurdly large: no crash
    ]
    path = write_rows(tmp_path / "bad.csv", rows)
    head = app.log.head()

    with pytest.raises(ProblemsFound) as caught:
        app.import_services(path, actor=ACTOR, today=today)

    problems = caught.value.problems
    assert problem_cells(problems) == {
        (3, "institution_code"),
        (4, "item_code"),
        (5, "staff_id"),
        (7, "service_date"),
        (8, "service_date"),
        (9, "quantity"),
        (10, "quantity"),
        (11, "quantity"),
        (12, "quantity"),
        (13, "source_id"),
        (14, "source_id"),
        (15, "quantity"),
    }
    assert len(problems) == 12
    assert all(p.file == str(path) for p in problems)
    assert "unknown institution" in the_problem(problems, 3, "institution_code").message_en
    assert "ZZ99" in the_problem(problems, 3, "institution_code").message_en
    assert "unknown item" in the_problem(problems, 4, "item_code").message_en
    staff = the_problem(problems, 5, "staff_id").message_en
    assert good[3]["staff_id"] in staff and other_inst in staff and "not at institution" in staff
    assert "future" in the_problem(problems, 7, "service_date").message_en
    assert "not a valid date" in the_problem(problems, 8, "service_date").message_en
    assert "greater than 0" in the_problem(problems, 9, "quantity").message_en
    assert "greater than 0" in the_problem(problems, 10, "quantity").message_en
    assert "not a valid number" in the_problem(problems, 11, "quantity").message_en
    assert "4 decimal places" in the_problem(problems, 12, "quantity").message_en
    assert "row 6" in the_problem(problems, 13, "source_id").message_en
    assert "第 6 行" in the_problem(problems, 13, "source_id").message_zh
    assert "row 2" in the_problem(problems, 14, "source_id").message_en
    assert "too large" in the_problem(problems, 15, "quantity").message_en
    assert app.log.head() == head
    assert notifications(app, RECORDED) == []


def test_a_missing_required_column_is_a_file_problem(
    loaded: Dangliang, county_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    app = loaded
    columns = [c for c in COLUMNS if c != "item_code"]
    rows = [{c: r[c] for c in columns} for r in county_rows[:5]]
    path = write_rows(tmp_path / "no_item.csv", rows, columns)
    head = app.log.head()

    for skip in (False, True):  # skipping bad rows cannot skip a broken file
        with pytest.raises(ProblemsFound) as caught:
            app.import_services(path, actor=ACTOR, today=TODAY, skip_bad_rows=skip)
        assert problem_cells(caught.value.problems) == {(1, "item_code")}
        assert "missing required column" in caught.value.problems[0].message_en
    assert app.log.head() == head


def test_skip_bad_rows_imports_the_good_rows_and_writes_the_rejects(
    loaded: Dangliang, county_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    app = loaded
    rows = [dict(r) for r in county_rows[:30]]
    rows[3]["institution_code"] = "ZZ99"  # row 5
    rows[10]["quantity"] = "abc"  # row 12
    rows[11]["service_date"] = "2024-13-01"  # row 13
    rows[20] = dict(rows[2])  # row 22: duplicate of row 4
    path = write_rows(tmp_path / "mixed.csv", rows)
    head = app.log.head()

    result = app.import_services(path, actor=ACTOR, today=TODAY, skip_bad_rows=True)

    bad_rows = {5, 12, 13, 22}
    assert (result.rows, result.inserted, result.already_present, result.rejected) == (30, 26, 0, 4)
    assert {p.row for p in result.problems} == bad_rows
    assert result.rejects_file == path.with_name("mixed.csv.rejects.csv")
    assert result.rejects_file.exists()
    rejects = read_rows(result.rejects_file, encoding="utf-8-sig")
    assert rejects and {"row", "reason"} <= set(rejects[0])
    assert sorted(int(r["row"]) for r in rejects) == sorted(bad_rows)
    by_row = {int(r["row"]): r for r in rejects}
    assert "institution_code" in by_row[5]["reason"] and "ZZ99" in by_row[5]["reason"]
    assert "quantity" in by_row[12]["reason"]
    assert "service_date" in by_row[13]["reason"]
    assert "row 4" in by_row[22]["reason"]
    for n in (5, 12, 13):  # the rejected row's own cells, so it can be fixed and sent again
        assert by_row[n]["source_id"] == rows[n - 2]["source_id"]
        assert by_row[n]["institution_code"] == rows[n - 2]["institution_code"]

    good = [r for n, r in enumerate(rows, start=2) if n not in bad_rows]
    stored = recorded_events(app)
    assert len(stored) == 26
    for r in good:
        assert service_record_id(r["institution_code"], r["source_id"]) in stored
    assert service_record_id("ZZ99", rows[3]["source_id"]) not in stored
    # the records, the import's start and its one batch, and the DataImport audit event
    assert app.log.head() == head + 2 + 26 + 1

    # the same file again: nothing new, the same rows rejected
    head = app.log.head()
    again = app.import_services(path, actor=ACTOR, today=TODAY, skip_bad_rows=True)
    assert (again.inserted, again.already_present, again.rejected) == (0, 26, 4)
    assert app.log.head() == head + 1
    assert len(recorded_events(app)) == 26


def test_same_source_id_with_other_content_is_refused(
    loaded: Dangliang, county: GeneratedCounty, county_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    app = loaded
    app.import_services(county.files["services"], actor=ACTOR, today=TODAY)
    head = app.log.head()
    changed = dict(county_rows[41])
    changed["quantity"] = str(Decimal(changed["quantity"]) + 1)
    rows = [*county_rows[:40], changed, {**county_rows[0], "source_id": "BRAND-NEW"}]
    path = write_rows(tmp_path / "changed.csv", rows)

    with pytest.raises(ProblemsFound) as caught:
        app.import_services(path, actor=ACTOR, today=TODAY)

    assert problem_cells(caught.value.problems) == {(42, "source_id")}
    assert "different content" in caught.value.problems[0].message_en
    assert app.log.head() == head
    original: ServiceRecord = app.log.repository.get(
        service_record_id(changed["institution_code"], changed["source_id"])
    )
    assert original.quantity == Decimal(county_rows[41]["quantity"])
    assert original.version == 1

    # with skip_bad_rows the changed row is rejected, with its own cells in the rejects file
    result = app.import_services(path, actor=ACTOR, today=TODAY, skip_bad_rows=True)
    assert (result.inserted, result.already_present, result.rejected) == (1, 40, 1)
    assert result.rejects_file is not None
    [reject] = read_rows(result.rejects_file, encoding="utf-8-sig")
    assert reject["row"] == "42"
    assert "source_id" in reject["reason"] and "different content" in reject["reason"]
    assert {c: reject[c] for c in COLUMNS} == changed
    assert app.log.repository.get(
        service_record_id(changed["institution_code"], changed["source_id"])
    ).quantity == Decimal(county_rows[41]["quantity"])


def test_each_batch_keeps_the_chain_hashed_beside_its_insert(
    loaded: Dangliang,
    county_rows: list[dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batches of a plain import are sealed with the digests hashed while they were
    inserted, never by reading them back (the slow path, for when the insert stored
    something else) — and those digests verify."""
    read_back: list[int] = []
    seal_appended = batch_seal.seal_appended
    monkeypatch.setattr(
        batch_seal,
        "seal_appended",
        lambda tables, n: (read_back.append(n), seal_appended(tables, n)),
    )
    path = write_rows(tmp_path / "some.csv", county_rows[:90])

    result = loaded.import_services(path, actor=ACTOR, today=TODAY, batch_size=25)

    assert (result.inserted, read_back) == (90, [])
    assert loaded.verify_log()["ok"]


@pytest.mark.parametrize("message", ["read", "unread"])
def test_records_stored_after_the_look_up_are_skipped_not_doubled(
    loaded: Dangliang,
    county_rows: list[dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    message: str,
) -> None:
    """Another import may store a record between this import's look-up and its write. The
    look-up is made blind here, so every batch expects only new records: on PostgreSQL the
    straight COPY then fails on the first stored one and the batch goes again skipping what
    is there; on SQLite the insert skips them itself. Nothing is doubled or lost and the
    chain still verifies. `unread`: the COPY's error is not recognised as a repeated key (as
    from a Citus server whose messages are not in English); a look-up of the batch's records
    tells instead."""
    app = loaded
    rows = county_rows[:90]
    app.import_services(write_rows(tmp_path / "some.csv", rows[20:50]), actor=ACTOR, today=TODAY)
    monkeypatch.setattr(bulk.SQLiteBulkWriter, "first_events", lambda self, ids: {})
    monkeypatch.setattr(bulk.PostgresBulkWriter, "first_events", lambda self, ids: {})
    if message == "unread":
        monkeypatch.setattr(bulk, "_repeated_key", lambda error: False)

    path = write_rows(tmp_path / "all.csv", rows)
    result = app.import_services(path, actor=ACTOR, today=TODAY, batch_size=25)

    assert (result.inserted, result.already_present) == (60, 30)
    stored = [
        UUID(str(n.originator_id))
        for topic in (RECORDED, SERVICE_RECORD_TOPIC)
        for n in notifications(app, topic)
    ]
    expected = {service_record_id(r["institution_code"], r["source_id"]) for r in rows}
    assert len(stored) == len(set(stored)) == 90 and set(stored) == expected
    assert app.verify_log()["ok"]


def test_text_that_needs_escaping_is_stored_and_read_back_exactly(
    loaded: Dangliang, county_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    """Records whose state is not plain ASCII (a backslash, quotes, Chinese, an accented
    letter) take another way into PostgreSQL's COPY than plain ones (hex instead of the
    text itself): every one is read back with its exact text, the chain verifies, and the
    same file again finds them all present."""
    texts = ["P\\back\\slash", '病人"甲"', "P'q", "Pét", "P plain"]
    rows = [
        dict(r, source_id=f"ESC-{n}", patient_ref=text)
        for n, (r, text) in enumerate(zip(county_rows, texts, strict=False))
    ]
    path = tmp_path / "escapes.csv"
    write_rows(path, rows)
    result = loaded.import_services(path, actor=ACTOR, today=TODAY)
    assert (result.inserted, result.rejected) == (len(texts), 0)
    stored = {e.source_id: e.patient_ref for e in recorded_events(loaded).values()}
    assert stored == {f"ESC-{n}": text for n, text in enumerate(texts)}
    assert loaded.verify_log()["ok"]
    again = loaded.import_services(path, actor=ACTOR, today=TODAY)
    assert (again.inserted, again.already_present) == (0, len(texts))


def test_a_ragged_file_that_looks_plain_is_read_again_row_by_row(
    loaded: Dangliang, county_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    """One line a cell too long and another a cell too short: the file's comma count is
    that of a plain file, so the column-wise read starts, stops at the long line, and the
    import reads the file again row by row — with the row reader's problem for that line."""
    app = loaded
    path = write_rows(tmp_path / "ragged.csv", county_rows[:10])
    lines = path.read_text("utf-8").split("\n")
    assert '"' not in path.read_text("utf-8") and not county_rows[3]["compliant"]
    lines[3] += ",多余"  # row 4: one cell more than the header
    lines[4] = lines[4].rsplit(",", 1)[0]  # row 5: the last (compliant) cell left out
    path.write_text("\n".join(lines), "utf-8")
    head = app.log.head()

    with pytest.raises(ProblemsFound) as caught:
        app.import_services(path, actor=ACTOR, today=TODAY)
    assert [p.row for p in caught.value.problems] == [4]
    assert app.log.head() == head

    result = app.import_services(path, actor=ACTOR, today=TODAY, skip_bad_rows=True)
    assert (result.rows, result.inserted, result.rejected) == (9, 9, 1)


# ---- file formats -----------------------------------------------------------------------


def test_every_services_format_imports_the_same_records(app: Dangliang, tmp_path: Path) -> None:
    """csv, csv-bom, csv-gb18030 (Chinese headers), xlsx and jsonl of the same county.

    XLSX goes first into the empty log and is compared with the CSV's text; every other
    format must then find all 300 records already present *with the same content* (a
    source id with any other quantity, date, staff, item, patient or compliance is refused).
    """
    order = ("xlsx", "jsonl", "csv", "csv-bom", "csv-gb18030")
    counties = {
        fmt: generate(tmp_path / fmt, records=300, seed=5, services_format=fmt) for fmt in order
    }
    load_reference(app, counties["csv"])
    plain = read_rows(counties["csv"].files["services"])
    expected = {
        (
            r["institution_code"],
            r["source_id"],
            Decimal(r["quantity"]),
            date.fromisoformat(r["service_date"]),
            r["staff_id"],
            r["item_code"],
            r["patient_ref"] or None,
            expected_compliant(r["compliant"]),
        )
        for r in plain
    }
    assert len(expected) == 300
    assert any(q > 1 for _, _, q, *_ in expected)
    # the files really are different encodings of the same rows
    assert counties["csv-bom"].files["services"].read_bytes()[:3] == b"\xef\xbb\xbf"
    gb = read_rows(counties["csv-gb18030"].files["services"], "gb18030")
    assert "来源编号" in gb[0]

    refs = set()
    for n, fmt in enumerate(order):
        result = app.import_services(counties[fmt].files["services"], actor=ACTOR, today=TODAY)
        refs.add(result.import_ref)
        assert result.problems == [], fmt
        inserted = 300 if n == 0 else 0
        assert (result.rows, result.inserted, result.already_present, result.rejected) == (
            300,
            inserted,
            300 - inserted,
            0,
        ), fmt
        stored = {
            (
                e.institution_code,
                e.source_id,
                e.quantity,
                e.service_date,
                e.staff_id,
                e.item_code,
                e.patient_ref,
                e.compliant,
            )
            for e in recorded_events(app).values()
        }
        assert stored == expected, fmt
    assert len(refs) == len(order)  # five different files


# ---- reference data ---------------------------------------------------------------------


def test_catalogue_effective_date_must_be_the_first_of_a_month(
    app: Dangliang, county: GeneratedCounty, tmp_path: Path
) -> None:
    rows = read_rows(county.files["catalogue"])
    bm001 = next(r for r in rows if r["item_code"] == "BM001")
    path = write_rows(
        tmp_path / "catalogue.csv",
        [*rows, dict(bm001, equivalent_value="1.3000", effective_from="2024-10-15")],
        CATALOGUE.column_names,
    )
    head = app.log.head()
    with pytest.raises(ProblemsFound) as caught:
        app.load_catalogue(path, actor=ACTOR)
    bad_row = len(rows) + 2
    problems = caught.value.problems
    assert problem_cells(problems) == {(bad_row, "effective_from")}  # reported once
    assert len(problems) == 1
    assert "1st of a month" in problems[0].message_en
    assert app.log.head() == head


def test_reference_reloads_record_nothing_and_a_new_value_is_one_event(
    loaded: Dangliang, county: GeneratedCounty, tmp_path: Path
) -> None:
    app = loaded
    head = app.log.head()
    for kind, load in (
        ("institutions", app.load_institutions),
        ("headcount", app.load_headcount),
        ("staff", app.load_staff),
        ("catalogue", app.load_catalogue),
    ):
        result = load(county.files[kind], actor="someone else")
        assert (result.changed, result.events) == (0, 0), kind
        assert result.rows > 0
    assert app.log.head() == head

    # a value change for BM001 from October: one ValueSet event, both values kept
    rows = read_rows(county.files["catalogue"])
    bm001 = next(r for r in rows if r["item_code"] == "BM001")
    path = write_rows(
        tmp_path / "catalogue.csv",
        [
            *rows,
            dict(
                bm001,
                equivalent_value="1.25",
                effective_from="2024-10-01",
                reference="调价文件 2024-9",
            ),
        ],
        CATALOGUE.column_names,
    )
    result = app.load_catalogue(path, actor=ACTOR)

    assert (result.changed, result.events) == (1, 1)
    new = notifications(app, start=head + 1)
    assert [n.topic for n in new] == [VALUE_SET]
    event: Any = app.log.mapper.to_domain_event(new[0])
    assert event.originator_id == catalogue_item_id("BM001")
    assert (event.equivalent_value, event.effective_from, event.actor) == (
        Decimal("1.2500"),
        date(2024, 10, 1),
        ACTOR,
    )
    item: CatalogueItem = app.log.repository.get(catalogue_item_id("BM001"))
    assert item.values == {
        date(2024, 1, 1): (Decimal(bm001["equivalent_value"]), bm001["reference"]),
        date(2024, 10, 1): (Decimal("1.2500"), "调价文件 2024-9"),
    }
    assert item.value_on(date(2024, 9, 30)) == Decimal(bm001["equivalent_value"])
    assert item.value_on(date(2024, 10, 1)) == Decimal("1.25")
    # loading the same file again records nothing
    assert app.load_catalogue(path, actor=ACTOR).events == 0


def test_records_before_the_reference_data_are_refused_at_once_saying_what_to_load(
    app: Dangliang, county: GeneratedCounty, county_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    """Service records imported into a log without its reference data: one problem per
    missing kind, saying which command loads it (not three problems on every row), with the
    file's own header problems, and nothing written; with the institutions loaded, only
    staff and the catalogue are named."""
    head = app.log.head()
    with pytest.raises(ProblemsFound) as refused:
        app.import_services(county.files["services"], actor=ACTOR, today=TODAY)
    loads = ("institutions load", "staff load", "catalog load")
    problems = refused.value.problems
    assert [p.row for p in problems] == [None, None, None]
    assert all(f"(dangliang {c})" in p.message_en for p, c in zip(problems, loads, strict=True))
    assert refused.value.problems[2].message_en == (
        "no catalogue items loaded yet: load them first (dangliang catalog load), "
        "then the service records"
    )
    columns = [c for c in COLUMNS if c != "item_code"]
    broken = write_rows(
        tmp_path / "no_item.csv", [{c: r[c] for c in columns} for r in county_rows[:5]], columns
    )
    with pytest.raises(ProblemsFound) as refused:
        app.import_services(broken, actor=ACTOR, today=TODAY)
    assert [(p.row, p.column) for p in refused.value.problems] == [
        (None, None),
        (None, None),
        (None, None),
        (1, "item_code"),
    ]
    assert app.log.head() == head

    app.load_institutions(county.files["institutions"], actor=ACTOR)
    with pytest.raises(ProblemsFound) as refused:
        app.import_services(county.files["services"], actor=ACTOR, today=TODAY)
    assert [p.message_zh for p in refused.value.problems] == [
        "尚未载入人员：请先用 dangliang staff load 载入，再导入服务记录",
        "尚未载入项目目录：请先用 dangliang catalog load 载入，再导入服务记录",
    ]
