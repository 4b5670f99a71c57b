#!/usr/bin/env python
"""Insurance projection benchmark: catch-up rate of the claims and enrolment read model
(`projections.insurance_cube`) next to the equivalents cube's, on SQLite.

    . .venv/bin/activate
    python benchmarks/insurance_projection.py --records 1000000 --repeat 2

Three logs of N events each are written straight into the library's table (one template event
written by the library's own mapper, its values varied per row — the same stored form the
bulk importers write): `Claim.Settled` (12 communities, 12 months, 10% out of area),
`Enrolment.Recorded` (N / 4 by default: `--enrolments M`) and `ServiceRecord.Recorded`
(200 institutions, 2,000 staff, 300 items). On each, the projection is dropped and caught up
from zero twice: as a rebuild does (tables without indexes, indexes added at the end) and
with the indexes in place from the start (a first catch-up of an existing log). Events/s =
events / seconds; the median over the repeats, min – max beside it. The databases go to
`--workdir` (default `$TMPDIR/dangliang-bench-insurance`) and are deleted unless `--keep`.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

from common import fmt_rate, fmt_spread, log, median, remove_sqlite, render_table
from sqlalchemy import func, select

from dangliang.application import Dangliang, bootstrap
from dangliang.domain.claims import Claim, Enrolment
from dangliang.domain.service import ServiceRecord
from dangliang.projections.equivalents import EquivalentsProjection
from dangliang.projections.insurance_cube import InsuranceProjection
from dangliang.projections.tracking import catch_up
from dangliang.settings import Settings

Values = Callable[[random.Random, int], dict[str, Any]]


def template(app: Dangliang, aggregate: Any, placeholders: dict[str, str]) -> tuple[str, str]:
    """(topic, body) of the event the library wrote for `aggregate`, as a format string:
    each key of `placeholders` (a piece of its JSON) becomes the value (`{name}`)."""
    app.log.save(aggregate)
    stored = app.log.app_recorder.select_notifications(start=1, limit=1)[0]
    body = stored.state.decode("utf-8").replace("{", "{{").replace("}", "}}")
    for piece, placeholder in placeholders.items():
        assert piece in body, piece
        body = body.replace(piece, placeholder)
    with app.write_engine.begin() as conn:  # the template itself is not part of the log
        conn.exec_driver_sql(f"DELETE FROM {app.log.events_table}")
    return stored.topic, body


def day(rng: random.Random) -> str:
    return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def claims(app: Dangliang) -> tuple[str, str, Values]:
    agg = Claim.settle(
        claim_id="CLAIM",
        insured_ref="PERSON",
        community_code="COMMUNITY",
        institution_code="INSTITUTION",
        out_of_area=True,
        settled_on=date(2024, 3, 5),
        fund_fen=987654321,
        actor="bench",
        import_ref="bench-claims.csv",
    )
    names = ("claim", "person", "community", "institution")
    pieces = {f'"{n.upper()}"': f'"{{{n}}}"' for n in names}
    pieces |= {"true": "{oa}", '"2024-03-05"': '"{day}"', "987654321": "{fen}"}
    topic, body = template(app, agg, pieces)

    def values(rng: random.Random, i: int) -> dict[str, Any]:
        return {
            "claim": f"CL{i:09d}",
            "person": f"P{rng.randrange(200_000):06d}",
            "community": f"G{rng.randrange(12):02d}",
            "institution": f"I{rng.randrange(200):03d}",
            "oa": "true" if rng.random() < 0.1 else "false",
            "day": day(rng),
            "fen": rng.randrange(1, 500_000),
        }

    return topic, body, values


def enrolments(app: Dangliang) -> tuple[str, str, Values]:
    agg = Enrolment.record(
        insured_ref="PERSON",
        from_month="2019-01",
        insurance_type="resident",
        birth_date=date(1963, 7, 15),
        home="甲镇",
        community_code="COMMUNITY",
        to_month="2099-12",
        actor="bench",
        import_ref="bench-enrolment.csv",
    )
    pieces = {'"PERSON"': '"{person}"', '"2019-01"': '"{start}"', '"2099-12"': "{end}"}
    pieces |= {'"1963-07-15"': '"{born}"', '"resident"': '"{kind}"'}
    pieces |= {'"COMMUNITY"': '"{community}"'}
    topic, body = template(app, agg, pieces)

    def values(rng: random.Random, i: int) -> dict[str, Any]:
        return {
            "person": f"P{i:08d}",
            "start": f"{rng.randint(2015, 2024)}-{rng.randint(1, 12):02d}",
            "end": f'"2024-{rng.randint(1, 12):02d}"' if rng.random() < 0.1 else "null",
            "born": f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "kind": "employee" if rng.random() < 0.3 else "resident",
            "community": f"G{rng.randrange(12):02d}",
        }

    return topic, body, values


def services(app: Dangliang) -> tuple[str, str, Values]:
    agg = ServiceRecord.record(
        institution_code="INSTITUTION",
        source_id="SOURCE",
        staff_id="STAFF",
        item_code="ITEM",
        quantity=Decimal("2.5"),
        service_date=date(2024, 3, 5),
        patient_ref="PERSON",
        actor="bench",
        import_ref="bench-services.csv",
    )
    names = ("institution", "source", "staff", "item", "person")
    pieces = {f'"{n.upper()}"': f'"{{{n}}}"' for n in names}
    pieces |= {'"2024-03-05"': '"{day}"', '"2.5"': '"{quantity}"'}
    topic, body = template(app, agg, pieces)

    def values(rng: random.Random, i: int) -> dict[str, Any]:
        return {
            "institution": f"I{rng.randrange(200):03d}",
            "source": f"S{i:09d}",
            "staff": f"ST{rng.randrange(2_000):05d}",
            "item": f"IT{rng.randrange(300):03d}",
            "person": f"P{rng.randrange(200_000):06d}",
            "day": day(rng),
            "quantity": rng.choice(["1", "2.5", "0.25", "3"]),
        }

    return topic, body, values


def fill(path: Path, kind: Callable[..., Any], n: int) -> None:
    app = bootstrap(Settings(f"sqlite:///{path}"))
    topic, body, values = kind(app)
    table = app.log.events_table
    app.close()
    rng = random.Random(42)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    insert = (
        f"INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES (?,1,?,?)"
    )
    for first in range(0, n, 100_000):
        rows = [
            (uuid4().hex, topic, body.format(**values(rng, i)).encode("utf-8"))
            for i in range(first, min(n, first + 100_000))
        ]
        conn.execute("BEGIN")
        conn.executemany(insert, rows)
        conn.execute("COMMIT")
    json.loads(conn.execute(f"SELECT state FROM {table} LIMIT 1").fetchone()[0])  # well formed
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def timed_catch_up(path: Path, make: Callable[[], Any], *, indexes_last: bool) -> float:
    app = bootstrap(Settings(f"sqlite:///{path}"))
    try:
        projection = make()
        projection.drop(app.write_engine)
        projection.create(app.write_engine, indexes=not indexes_last)
        start = time.perf_counter()
        catch_up(app.write_engine, app.log, projection)
        if indexes_last:
            projection.add_indexes(app.write_engine)
        seconds = time.perf_counter() - start
        with app.engine.connect() as conn:  # every event landed
            t = projection.t
            if isinstance(projection, InsuranceProjection):
                found = sum(
                    conn.scalar(select(func.count()).select_from(x)) or 0
                    for x in (t.claims, t.enrolments)
                )
            else:
                found = conn.scalar(select(func.sum(t.cube.c.records))) or 0
        assert found == app.log.head(), (found, app.log.head())
        return seconds
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--enrolments", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.gettempdir()) / "dangliang-bench-insurance"
    workdir.mkdir(parents=True, exist_ok=True)
    n = args.records
    logs = {
        "claims (Claim.Settled)": (claims, n, InsuranceProjection),
        "enrolment (Enrolment.Recorded)": (
            enrolments,
            args.enrolments or n // 4,
            InsuranceProjection,
        ),
        "services (equivalents cube)": (services, n, lambda: EquivalentsProjection("z")),
    }
    rows = []
    for label, (kind, count, make) in logs.items():
        path = workdir / f"{kind.__name__}-{count}.db"
        if not path.exists():
            log(f"writing {count:,} {label} events to {path}")
            fill(path, kind, count)
        for indexes_last in (True, False):
            rates = []
            for i in range(args.repeat):
                seconds = timed_catch_up(path, make, indexes_last=indexes_last)
                rates.append(count / seconds)
                log(
                    f"{label}, indexes {'last' if indexes_last else 'first'}, repeat {i + 1}: "
                    f"{seconds:.1f} s, {count / seconds:,.0f} events/s"
                )
            how = "rebuild (indexes last)" if indexes_last else "first catch-up (indexes first)"
            rows.append(
                [label, how, f"{count:,}", fmt_rate(median(rates)), fmt_spread(rates, fmt_rate)]
            )
        if not args.keep:
            remove_sqlite(path)
    print(render_table(["log", "catch-up", "events", "events/s", "min – max"], rows))


if __name__ == "__main__":
    main()
