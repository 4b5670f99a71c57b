#!/usr/bin/env python
"""Bytes per service-record event on disk: today's stored form against compact candidates.

    . .venv/bin/activate
    python benchmarks/event_size.py --records 200000
    python benchmarks/event_size.py --records 1000000 --pg-url postgresql://postgres@127.0.0.1:5432/test

A county of `--records` service records (seed 42) is imported by `dangliang import` into a
scratch SQLite file and a scratch PostgreSQL schema (today's form, the baseline). Its
service-record events are then rewritten, row for row, into tables of the library's own layout
(SQLite: `originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB`, primary key
on the first two; PostgreSQL: the same with `uuid`, `bytea` and the `notification_id` bigserial
with its unique index) in each candidate form, and measured as table + indexes:

- `today`: the stored JSON as it is (type tags, the aggregate's topic, the timestamp, the actor
  and the import reference in every row; the topic `…service:ServiceRecord.Recorded`);
- `compact JSON`: a JSON array of the record's own fields (quantity and compliance as numbers,
  the date as text) plus the number of the import's own event, which says the actor, the
  reference and the time once; the topic a short registered name (`SR1`);
- `compact msgpack`: the same array as MessagePack (msgspec, when it is installed:
  `pip install msgspec`; otherwise this form is left out);
- `… + binary id` (SQLite): the aggregate id stored as 16 bytes instead of 32 hex digits.

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
from typing import Any

from common import dangliang_command, log, pg_connect, remove_sqlite, render_table

SHORT_TOPIC = "SR1"
RECORDED = "dangliang.domain.service:ServiceRecord.Recorded"


def compact_fields(state: bytes) -> list[Any]:
    d = json.loads(state)
    quantity = d["quantity"]["_data_"]
    return [
        d["institution_code"],
        d["source_id"],
        d["staff_id"],
        d["item_code"],
        int(quantity) if quantity.isdigit() else quantity,
        d["service_date"]["_data_"],
        d["patient_ref"],
        1 if d["compliant"] else 0,
        123_456,  # the notification id of the import's own event (a 6-digit number)
    ]


FORMS: dict[str, Callable[[bytes], bytes]] = {
    "today": lambda state: state,
    "compact JSON": lambda state: json.dumps(
        compact_fields(state), ensure_ascii=False, separators=(",", ":")
    ).encode(),
}
try:
    import msgspec

    FORMS["compact msgpack"] = lambda state: msgspec.msgpack.encode(compact_fields(state))
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
            (RECORDED,),
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
            "today (as imported)",
            f"{sqlite_size(source, ('stored_events',)) / _events(source):.0f}",
            "all events of the log",
        ]
    ]
    for name, encode in FORMS.items():
        for binary_id in (False, True):
            if binary_id and name == "today":
                continue
            path = workdir / "form.db"
            remove_sqlite(path)
            with sqlite3.connect(path) as conn:
                conn.execute(
                    "CREATE TABLE stored_events (originator_id "
                    f"{'BLOB' if binary_id else 'TEXT'}, originator_version INTEGER, topic TEXT, "
                    "state BLOB, PRIMARY KEY (originator_id, originator_version))"
                )
                topic = RECORDED if name == "today" else SHORT_TOPIC
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
                "today (as imported)",
                f"{total[0] / total[1]:.0f}",
                "all events of the log",
            ]
        )
        source = conn.execute(
            f"SELECT originator_id, originator_version, state FROM {schema}.dangliang_events "
            "WHERE topic = %s",
            (RECORDED,),
        ).fetchall()
        for name, encode in FORMS.items():
            conn.execute(f"DROP TABLE IF EXISTS {schema}.form")
            conn.execute(
                f"CREATE TABLE {schema}.form (originator_id uuid NOT NULL, originator_version "
                "bigint NOT NULL, topic text, state bytea, notification_id bigserial, "
                "PRIMARY KEY (originator_id, originator_version))"
            )
            conn.execute(f"CREATE UNIQUE INDEX ON {schema}.form (notification_id)")
            topic = RECORDED if name == "today" else SHORT_TOPIC
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
