#!/usr/bin/env python
"""Bytes per service-record event on disk: the compact form as imported against the long form.

    . .venv/bin/activate
    python benchmarks/event_size.py --records 200000
    python benchmarks/event_size.py --records 1000000 --pg-url postgresql://postgres@127.0.0.1:5432/test

A county of `--records` service records (seed 42) is imported by `dangliang import` into a
scratch SQLite file and a scratch PostgreSQL schema: the whole log as imported is measured
first (service records in the compact form, `dangliang.ledger.compact`, plus the reference data
and the import's own events). Its service-record events are then written, row for row, into
tables of the library's own layout (SQLite: `originator_id TEXT, originator_version INTEGER,
topic TEXT, state BLOB`, primary key on the first two; PostgreSQL: the same with `uuid`,
`bytea` and the `notification_id` bigserial with its unique index) in each form, and measured
as table + indexes:

- `long form`: the library's own JSON, as every record was stored before the compact form
  (type tags, the aggregate's topic, the time, the actor and the import reference in every
  row; the topic `…service:ServiceRecord.Recorded`) — the baseline;
- `compact JSON`: the stored state as imported (`[batch, institution, source id, staff, item,
  date, patient, quantity, compliant]`, defaults left out, the date as days since 1970-01-01;
  topic `S`);
- `compact as MessagePack`: the same array as MessagePack (msgspec, when installed), for
  comparison only;
- `… + binary id` (SQLite): the aggregate id stored as 16 bytes instead of 32 hex digits (not
  done: the library's table keeps text ids on SQLite).

SQLite: `dbstat` (pages of the table and its indexes, in bytes) ÷ rows, after `VACUUM`.
PostgreSQL: `pg_total_relation_size` (table, TOAST and indexes) ÷ rows, after `VACUUM FULL`.
The hash chain's own table (`audit_chain`, one digest per event) is shown apart.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from common import dangliang_command, log, pg_connect, remove_sqlite, render_table

from dangliang.ledger.compact import (
    SERVICE_RECORD_TOPIC,
    SERVICE_RECORD_TOPIC_V1,
    compact_date,
    compact_values,
)

SHORT_TOPIC = SERVICE_RECORD_TOPIC  # "S"
RECORDED = "dangliang.domain.service:ServiceRecord.Recorded"
STAMP = {"_type_": "datetime_iso", "_data_": "2026-12-06T10:00:00.123456+00:00"}


def long_form(state: bytes) -> bytes:
    """The library's own JSON for the same record, as every record was stored before the
    compact form: type tags, the aggregate's topic, the time, actor and import reference."""
    _, inst, source, staff, item, day, patient, quantity, compliant = compact_values(state)
    event = {
        "timestamp": STAMP,
        "originator_topic": "dangliang.domain.service:ServiceRecord",
        "institution_code": inst,
        "source_id": source,
        "staff_id": staff,
        "item_code": item,
        "quantity": {"_type_": "decimal_str", "_data_": str(quantity)},
        "service_date": {"_type_": "date_iso", "_data_": compact_date(day).isoformat()},
        "patient_ref": patient,
        "compliant": bool(compliant),
        "actor": "county-clerk",
        "import_ref": "sha256:0123456789abcdef",
    }
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


FORMS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "long form (the library's JSON; before)": (RECORDED, long_form),
    "compact JSON form 1, the date as ISO text (SR1; before)": (
        SERVICE_RECORD_TOPIC_V1,
        lambda state: form_1(state),
    ),
    "compact JSON (as imported now)": (SHORT_TOPIC, lambda state: state),
}


def form_1(state: bytes) -> bytes:
    """The same record in compact form 1 (`SR1`): the date as ISO text."""
    values = json.loads(state)
    values[5] = compact_date(values[5]).isoformat()
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()


try:
    import msgspec

    FORMS["compact as MessagePack (not used)"] = (
        SHORT_TOPIC,
        lambda state: msgspec.msgpack.encode(compact_values(state)),
    )
except ImportError:  # pragma: no cover - optional
    log("msgspec is not installed: the msgpack form is left out")


def import_county(db_url: str, county: Path) -> None:
    for args in (
        ("institutions", "load", "institutions.csv"),
        ("staff", "load", "staff.csv"),
        ("catalog", "load", "catalogue.csv"),
        ("import", "services.csv"),
    ):
        subprocess.run(
            [*dangliang_command(), *args[:-1], str(county / args[-1]), "--db", db_url],
            check=True,
            capture_output=True,
        )


def sqlite_rows(path: Path) -> Iterator[tuple[str, int, bytes]]:
    with sqlite3.connect(path) as conn:
        yield from conn.execute(
            "SELECT originator_id, originator_version, state FROM stored_events WHERE topic = ?",
            (SHORT_TOPIC,),
        )


def sqlite_size(path: Path, tables: tuple[str, ...]) -> int:
    with sqlite3.connect(path) as conn:
        names = ",".join("?" for _ in tables)
        found = conn.execute(
            f"SELECT sum(pgsize) FROM dbstat WHERE name IN ({names}) OR name IN "
            f"(SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name IN ({names}))",
            (*tables, *tables),
        ).fetchone()
        return int(found[0] or 0)


def measure_sqlite(source: Path, workdir: Path, rows: int) -> list[list[str]]:
    out = [
        [
            "SQLite",
            "the whole log as imported",
            f"{sqlite_size(source, ('stored_events',)) / _events(source):.0f}",
            "all events of the log",
        ]
    ]
    for name, (topic, encode) in FORMS.items():
        for binary_id in (False, True):
            if binary_id and topic == RECORDED:
                continue
            path = workdir / "form.db"
            remove_sqlite(path)
            with sqlite3.connect(path) as conn:
                conn.execute(
                    "CREATE TABLE stored_events (originator_id "
                    f"{'BLOB' if binary_id else 'TEXT'}, originator_version INTEGER, topic TEXT, "
                    "state BLOB, PRIMARY KEY (originator_id, originator_version))"
                )
                conn.executemany(
                    "INSERT INTO stored_events VALUES (?,?,?,?)",
                    (
                        (uuid.UUID(oid).bytes if binary_id else oid, v, topic, encode(state))
                        for oid, v, state in sqlite_rows(source)
                    ),
                )
            with sqlite3.connect(path) as conn:
                conn.execute("VACUUM")
            label = name + (" + binary id" if binary_id else "")
            size = sqlite_size(path, ("stored_events",))
            out.append(["SQLite", label, f"{size / rows:.0f}", "service records only"])
    chain = sqlite_size(source, ("audit_chain",))
    out.append(["SQLite", "audit_chain (the hash chain)", f"{chain / _events(source):.0f}", ""])
    return out


def _events(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM stored_events").fetchone()[0])


def measure_postgres(base: str, county: Path, rows: int) -> list[list[str]]:
    schema = "dl_bench_size"
    with pg_connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    import_county(f"{base}?schema={schema}", county)
    out = []
    with pg_connect(base, autocommit=True) as conn:
        conn.execute(f"VACUUM FULL {schema}.dangliang_events")
        total = conn.execute(
            f"SELECT pg_total_relation_size('{schema}.dangliang_events'), count(*) "
            f"FROM {schema}.dangliang_events"
        ).fetchone()
        out.append(
            [
                "PostgreSQL",
                "the whole log as imported",
                f"{total[0] / total[1]:.0f}",
                "all events of the log",
            ]
        )
        source = conn.execute(
            f"SELECT originator_id, originator_version, state FROM {schema}.dangliang_events "
            "WHERE topic = %s",
            (SHORT_TOPIC,),
        ).fetchall()
        for name, (topic, encode) in FORMS.items():
            conn.execute(f"DROP TABLE IF EXISTS {schema}.form")
            conn.execute(
                f"CREATE TABLE {schema}.form (originator_id uuid NOT NULL, originator_version "
                "bigint NOT NULL, topic text, state bytea, notification_id bigserial, "
                "PRIMARY KEY (originator_id, originator_version))"
            )
            conn.execute(
                f"CREATE UNIQUE INDEX ON {schema}.form (notification_id) WITH (fillfactor = 100)"
            )
            with (
                conn.cursor() as cur,
                cur.copy(
                    f"COPY {schema}.form (originator_id, originator_version, topic, state) "
                    "FROM STDIN"
                ) as copy,
            ):
                for oid, version, state in source:
                    copy.write_row((oid, version, topic, encode(bytes(state))))
            conn.execute(f"VACUUM FULL {schema}.form")
            size = conn.execute(f"SELECT pg_total_relation_size('{schema}.form')").fetchone()[0]
            out.append(["PostgreSQL", name, f"{size / rows:.0f}", "service records only"])
        chain = conn.execute(f"SELECT pg_total_relation_size('{schema}.audit_chain')").fetchone()[0]
        out.append(["PostgreSQL", "audit_chain (the hash chain)", f"{chain / total[1]:.0f}", ""])
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "dl-size"))
    args = parser.parse_args()
    workdir = Path(args.workdir)
    county = workdir / f"county-{args.records}"
    if not (county / "services.csv").exists():
        log(f"generating {args.records:,} records …")
        subprocess.run(
            [
                *dangliang_command(),
                "generate",
                "--out",
                str(county),
                "--records",
                str(args.records),
                "--seed",
                "42",
            ],
            check=True,
            capture_output=True,
        )
    source = workdir / "today.db"
    remove_sqlite(source)
    log("importing into SQLite …")
    import_county(f"sqlite:///{source}", county)
    with sqlite3.connect(source) as conn:
        conn.execute("VACUUM")
    rows = sum(1 for _ in sqlite_rows(source))
    table = measure_sqlite(source, workdir, rows)
    log("importing into PostgreSQL …")
    table += measure_postgres(args.pg_url, county, rows)
    print(f"\n{rows:,} service-record events; bytes per event, table + indexes:\n")
    print(render_table(["backend", "form", "bytes/event", "rows measured"], table, markdown=True))


if __name__ == "__main__":
    main()
