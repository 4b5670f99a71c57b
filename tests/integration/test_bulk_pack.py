"""On PostgreSQL an import that at least doubles the log rebuilds the log's primary key packed
(`PostgresBulkWriter.pack_primary_key`): a county's first bulk loads leave it ~64 % full
otherwise. A smaller import leaves it as it is, and so does an import that finds the index in
use by someone else: the import completes either way."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from dangliang.application import Dangliang
from dangliang.demo.generator import GeneratedCounty
from dangliang.ledger import bulk

on_postgres = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)]
)
TODAY = date(2025, 1, 1)


def primary_key_file(app: Dangliang) -> int:
    """The file the log's primary key is stored in: a rebuilt index gets a new one."""
    with app.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT c.relfilenode FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE i.indrelid = CAST(:t AS regclass) AND i.indisprimary"
                ),
                {"t": app.log.events_table},
            ).scalar_one()
        )


def new_records(county: GeneratedCounty, path: Path, n: int) -> Path:
    """`n` of the county's records again under new source ids: records the log has not got."""
    with county.files["services"].open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = [dict(r, source_id=f"NEW-{k}") for k, r in zip(range(n), reader, strict=False)]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@on_postgres
def test_an_import_that_doubles_the_log_packs_its_primary_key_and_a_smaller_one_does_not(
    reference_app: Dangliang, county: GeneratedCounty, tmp_path: Path
) -> None:
    app = reference_app
    before = primary_key_file(app)
    result = app.import_services(county.files["services"], actor="t", today=TODAY)
    assert result.inserted == county.records  # 3,000 records on ~1,500 reference events
    packed = primary_key_file(app)
    assert packed != before

    more = app.import_services(
        new_records(county, tmp_path / "more.csv", 100), actor="t", today=TODAY
    )
    assert more.inserted == 100
    assert primary_key_file(app) == packed
    assert app.verify_log()["ok"]
    again = app.import_services(county.files["services"], actor="t", today=TODAY)
    assert (again.inserted, again.already_present) == (0, county.records)


@on_postgres
def test_an_index_in_use_is_left_as_it_is_and_the_import_completes(
    reference_app: Dangliang,
    county: GeneratedCounty,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = reference_app
    monkeypatch.setattr(bulk, "PACK_LOCK_TIMEOUT", "200ms")
    before = primary_key_file(app)
    url = app.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as reader:  # a reader inside a transaction that used the index
        reader.execute("SET enable_seqscan = off")
        reader.execute(
            f"SELECT count(*) FROM {app.log.events_table} WHERE originator_id = %s",
            ("00000000-0000-0000-0000-000000000000",),
        )
        result = app.import_services(county.files["services"], actor="t", today=TODAY)
        assert result.inserted == county.records
        assert primary_key_file(app) == before
    assert app.verify_log()["ok"]
