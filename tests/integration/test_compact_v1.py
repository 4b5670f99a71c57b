"""A log holding service records in compact form 1 (`SR1`, the date as ISO text), written by
the code before form 2, opens, verifies and counts the same with today's code; importing its
file again adds nothing, and new records go in form 2 beside the old ones
(tests/fixtures/compact_v1/README.md says how the database was made).

On PostgreSQL, form 1 is read by other SQL (`jsonb`): the third test rewrites an imported log's
records into form 1 on both backends and checks that the cube rebuilt from them is the same.
The last checks the other saving of the same change on a new PostgreSQL log: its
notification-id index filled to the brim.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from dangliang.application import Dangliang, bootstrap
from dangliang.demo.generator import GeneratedCounty
from dangliang.domain.problems import ProblemsFound
from dangliang.ledger.compact import (
    SERVICE_RECORD_TOPIC,
    SERVICE_RECORD_TOPIC_V1,
    compact_date,
)
from dangliang.settings import Settings
from tests.conftest import PrepareApp, records
from tests.integration.test_upgrade import (
    _totals,
    _write,
    assert_added_and_rebuilt,
    cli_json,
    unpacked,
)

FIXTURE = Path(__file__).parent.parent / "fixtures" / "compact_v1"
TODAY = date(2025, 6, 30)


@pytest.fixture
def v1_url(tmp_path: Path) -> str:
    return unpacked(FIXTURE / "compact_v1.db.gz", tmp_path)


@pytest.fixture
def v1_app(v1_url: str) -> Iterator[Dangliang]:
    app = bootstrap(Settings(v1_url))
    yield app
    app.close()


def compact_topics(app: Dangliang) -> dict[str, int]:
    with app.engine.connect() as conn:
        found = conn.execute(
            text(
                f"SELECT topic, count(*) FROM {app.log.events_table} "
                "WHERE topic IN (:v1, :v2) GROUP BY topic"
            ),
            {"v1": SERVICE_RECORD_TOPIC_V1, "v2": SERVICE_RECORD_TOPIC},
        )
        return {str(topic): int(n) for topic, n in found}


def test_the_old_log_verifies_and_counts_what_the_old_code_counted(
    v1_app: Dangliang, v1_url: str
) -> None:
    assert compact_topics(v1_app) == {SERVICE_RECORD_TOPIC_V1: 400}
    assert v1_app.verify_log()["ok"]
    v1_app.rebuild()  # the cube again from the log: form 1 read by today's SQL
    printed = json.loads(cli_json(v1_url, "equivalents", "--period", "2024"))
    assert printed == json.loads((FIXTURE / "equivalents_2024.json").read_text())


def test_its_file_again_adds_nothing_and_new_records_go_in_form_2(
    v1_app: Dangliang, tmp_path: Path
) -> None:
    app = v1_app
    again = app.import_services(FIXTURE / "services.csv", actor="upgrade", today=TODAY)
    assert (again.inserted, again.already_present, again.rejected) == (0, 400, 0)

    with (FIXTURE / "services.csv").open(encoding="utf-8", newline="") as f:
        old_rows = list(csv.DictReader(f))
    new_rows = [dict(r, source_id=f"NEW-{n}") for n, r in enumerate(old_rows[:50])]
    mixed = tmp_path / "mixed.csv"
    _write(mixed, old_rows[100:200] + new_rows)
    before = _totals(app)
    result = app.import_services(mixed, actor="upgrade", today=TODAY)
    assert (result.inserted, result.already_present, result.rejected) == (50, 100, 0)
    assert compact_topics(app) == {SERVICE_RECORD_TOPIC_V1: 400, SERVICE_RECORD_TOPIC: 50}

    assert_added_and_rebuilt(app, before, new_rows)

    changed = tmp_path / "changed.csv"
    _write(changed, [dict(old_rows[0], quantity=str(Decimal(old_rows[0]["quantity"]) + 1))])
    with pytest.raises(ProblemsFound) as caught:
        app.import_services(changed, actor="upgrade", today=TODAY)
    assert [p.column for p in caught.value.problems] == ["source_id"]


def test_records_rewritten_into_form_1_build_the_same_cube(
    prepared_app: PrepareApp, county: GeneratedCounty
) -> None:
    app = prepared_app(records(county))
    before = _totals(app)
    events = app.log.events_table
    with app.write_engine.begin() as conn:
        key = "notification_id" if conn.dialect.name == "postgresql" else "rowid"
        rows = conn.execute(
            text(f"SELECT {key}, state FROM {events} WHERE topic = :t"),
            {"t": SERVICE_RECORD_TOPIC},
        ).all()
        assert len(rows) == county.records
        for position, state in rows:
            values = json.loads(bytes(state))
            values[5] = compact_date(values[5]).isoformat()
            form_1 = json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()
            conn.execute(
                text(f"UPDATE {events} SET topic = :t, state = :s WHERE {key} = :k"),
                {"t": SERVICE_RECORD_TOPIC_V1, "s": form_1, "k": position},
            )
    assert compact_topics(app) == {SERVICE_RECORD_TOPIC_V1: county.records}
    app.rebuild()
    assert _totals(app) == before
    again = app.import_services(county.files["services"], actor="t", today=TODAY)
    assert (again.inserted, again.already_present) == (0, county.records)


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_on_postgresql_a_new_logs_notification_index_fills_its_pages(app: Dangliang) -> None:
    """The notification-id index only grows at its right edge: a new log's pages are filled
    to 100 %, not PostgreSQL's default 90 % (20 bytes a record instead of 22.5)."""
    with app.engine.connect() as conn:
        options = conn.execute(
            text(
                "SELECT c.reloptions FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = CAST(:table AS regclass) "
                "AND pg_get_indexdef(i.indexrelid) LIKE '%(notification_id)%'"
            ),
            {"table": app.log.events_table},
        ).scalar_one()
    assert options == ["fillfactor=100"]
