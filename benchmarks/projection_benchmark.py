#!/usr/bin/env python
"""Projection benchmark: rebuilding, re-pricing and as-of queries of the equivalents cube.

Run from the project's virtualenv:

    . .venv/bin/activate
    python benchmarks/projection_benchmark.py --records 1000000 --repeat 3 --backend both \\
        --county-year-records 4000000

Quick smoke test (a minute or two):

    python benchmarks/projection_benchmark.py --records 50000 --county-year-records 100000 \\
        --repeat 1 --backend both

Options: `--records N` (rebuild county, default 1,000,000), `--county-year-records M` (re-pricing
and as-of county, default 4,000,000; equal to N reuses the same database), `--repeat R`
(default 3; every figure is the median over R, min – max shown), `--backend sqlite|postgres|both`
(default sqlite), `--workdir DIR` (default `$TMPDIR/dangliang-bench-projections`: counties are
generated there as `county-N` and reused; SQLite files are deleted at the end unless `--keep`),
`--pg-url URL` (default `postgresql://postgres@127.0.0.1:5432/test`; each database is a fresh
schema `bench_proj_<pid>_<N>`, dropped at the end), `--corrections K` (corrections/voids per
as-of repeat, default 5).

Per backend:

1. Setup (not timed as a result, but reported): `dangliang generate --seed 42` (reused when
   present), a fresh database, `dangliang institutions load`, `staff load`, `catalog load` and
   `import` through the CLI, then one in-process catch-up (`bootstrap(Settings(url))`,
   `app.catch_up()`), and a plain copy of the services CSV in `plain_services` (rebuild county).
2. Rebuild rate (county of N): `app.rebuild()` and `app.rebuild(blue_green=True)` → events/s
   (log head / seconds). Baselines in the same repeat: (a) the library's plain read path —
   `select_notifications(start, limit=10_000, inclusive_of_start=False)` pages, each
   notification mapped with `mapper.to_domain_event` (no projection work); (b) `CREATE TABLE g AS
   SELECT dims, SUM(quantity_e4), COUNT(*) FROM plain_services GROUP BY dims` over the same rows
   in a plain table. Ratios are taken per repeat, then the median. Check: the rebuilt cube equals
   that GROUP BY, cell for cell.
3. Where the time goes (county of N): the three SQL steps of `EquivalentsProjection.process`
   (Recorded JSON → `eq_deltas` INSERT…SELECT, corrections/voids scan, merge into `eq_cube`), the
   commit, the index, the registry rebuild, each timed on a scratch projection (suffix `z`), and
   the JSON-extracting SELECT alone (no insert); on PostgreSQL also that SELECT with its
   `convert_from(state)::jsonb` subquery fenced by `OFFSET 0` (parsed once per row instead of
   once per field), and a bare scan of the Recorded rows.
4. Re-pricing a county-year (county of M, target < 1 s): record a new value for the most
   common item, effective YEAR-03-01 (a past month), then time `app.equivalents("YEAR")`
   (catch-up of that one event + the whole-year answer). Baseline: a full replay,
   `app.rebuild()` + the same query. Check: both give the same answer.
5. As-of month query (county of M, target < 1 s): capture `app.equivalents("YEAR-03")` and the
   head P, record K corrections/voids of March records, catch up (timed apart), then time
   `app.equivalents("YEAR-03", position=P)`, `app.equivalents("YEAR-03", as_of=<a moment
   between>)` and the current `app.equivalents("YEAR-03")`. Check: both as-of answers equal the
   captured one (OK / MISMATCH) and the current one differs.

Progress goes to stderr with timestamps; the report to stdout. Only the standard library and
the project's own dependencies.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

# `benchmarks/` is first on sys.path when this runs as `python benchmarks/projection_benchmark.py`
from common import (
    dangliang_command,
    fmt_rate,
    fmt_spread,
    git_describe,
    log,
    machine_info,
    median,
    pg_connect,
    pg_drop_schema,
    pg_version,
    remove_sqlite,
    render_table,
)
from sqlalchemy import func, select, text

from dangliang.application import Dangliang, bootstrap
from dangliang.domain.catalogue import CatalogueItem
from dangliang.domain.ids import catalogue_item_id, service_record_id
from dangliang.domain.service import ServiceRecord
from dangliang.projections import equivalents as eq
from dangliang.settings import Settings

SEED = 42
YEAR = 2024  # the generator's default year
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PAGE = 10_000
DIMS = "institution_code, staff_id, item_code, month, compliant"

TARGET_REBUILD_RATE = 150_000  # events/s, SQLite
TARGET_READ_RATIO = 1.75  # rebuild rate / library read path rate
TARGET_REPRICE_S = 1.0
TARGET_ASOF_S = 1.0

# --------------------------------------------------------------------------------------------
# helpers


def load1() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def fmt_s(x: float) -> str:
    if x != x:
        return "n/a"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def fmt_x(x: float) -> str:
    return "n/a" if x != x else f"{x:.2f}×"


def library_versions() -> dict[str, str]:
    import eventsourcing
    import sqlalchemy

    es_version = getattr(eventsourcing, "__version__", "?")
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        es_version = version("eventsourcing")
    return {"eventsourcing": es_version, "sqlalchemy": sqlalchemy.__version__}


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def run_cli(args: Sequence[str]) -> tuple[float, str]:
    env = dict(os.environ)
    env.pop("DANGLIANG_DB", None)
    env["DANGLIANG_ACTOR"] = "bench"
    started = time.perf_counter()
    proc = subprocess.run(
        [*dangliang_command(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(
            f"dangliang {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return wall, proc.stdout.strip()


# --------------------------------------------------------------------------------------------
# setup


def ensure_county(workdir: Path, records: int) -> tuple[Path, float]:
    county = workdir / f"county-{records}"
    meta = county / "bench-meta.json"
    want = {"records": records, "seed": SEED}
    if meta.exists() and (county / "services.csv").exists():
        with contextlib.suppress(ValueError):
            if json.loads(meta.read_text()) == want:
                log(f"reusing county {county}")
                return county, 0.0
    if county.exists():
        shutil.rmtree(county)
    log(f"generating {records:,} records into {county} …")
    wall, _ = run_cli(
        ["generate", "--out", str(county), "--records", str(records), "--seed", str(SEED)]
    )
    meta.write_text(json.dumps(want))
    log(f"generated in {wall:.1f}s")
    return county, wall


@dataclass
class Db:
    backend: str
    records: int
    url: str
    county: Path
    sqlite_path: Path | None = None
    schema: str | None = None
    setup: dict[str, float] = field(default_factory=dict)
    app: Dangliang | None = None

    def open(self) -> Dangliang:
        if self.app is None:
            self.app = bootstrap(Settings(self.url))
        return self.app

    def close(self) -> None:
        if self.app is not None:
            self.app.close()
            self.app = None


def setup_db(args: argparse.Namespace, backend: str, records: int) -> Db:
    workdir: Path = args.workdir
    county, gen_s = ensure_county(workdir, records)
    if backend == "sqlite":
        path = workdir / f"bench-proj-{records}.db"
        remove_sqlite(path)
        db = Db(backend, records, f"sqlite:///{path}", county, sqlite_path=path)
    else:
        schema = f"bench_proj_{os.getpid()}_{records}"
        pg_drop_schema(args.pg_url, schema)
        db = Db(backend, records, f"{args.pg_url}?schema={schema}", county, schema=schema)
    db.setup["generate"] = gen_s
    started = time.perf_counter()
    for group, name in (
        ("institutions", "institutions.csv"),
        ("staff", "staff.csv"),
        ("catalog", "catalogue.csv"),
    ):
        run_cli([group, "load", str(county / name), "--db", db.url])
    db.setup["reference loads (CLI)"] = time.perf_counter() - started
    log(f"{backend}: importing {records:,} records …")
    wall, out = run_cli(["import", str(county / "services.csv"), "--db", db.url])
    db.setup["import (CLI)"] = wall
    log(f"{backend}: {out.splitlines()[-1] if out else ''} [{wall:.1f}s wall]")
    app = db.open()
    db.setup["initial catch-up"], _ = timed(app.catch_up)
    log(f"{backend}: initial catch-up {db.setup['initial catch-up']:.1f}s")
    return db


def drop_db(args: argparse.Namespace, db: Db) -> None:
    db.close()
    if db.backend == "sqlite":
        if not args.keep and db.sqlite_path is not None:
            remove_sqlite(db.sqlite_path)
    elif db.schema:
        pg_drop_schema(args.pg_url, db.schema)


def csv_plain_rows(county: Path) -> list[tuple[str, str, str, str, bool, int]]:
    rows = []
    with (county / "services.csv").open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        for r in reader:
            compliant = (r["compliant"] or "true").strip().lower() not in ("false", "0", "no", "否")
            rows.append(
                (
                    r["institution_code"],
                    r["staff_id"],
                    r["item_code"],
                    r["service_date"][:7],
                    compliant,
                    int(Decimal(r["quantity"]) * 10_000),
                )
            )
    return rows


def load_plain(args: argparse.Namespace, db: Db) -> float:
    started = time.perf_counter()
    rows = csv_plain_rows(db.county)
    if db.backend == "sqlite":
        assert db.sqlite_path is not None
        conn = sqlite3.connect(db.sqlite_path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("DROP TABLE IF EXISTS plain_services")
        conn.execute(
            "CREATE TABLE plain_services (institution_code TEXT, staff_id TEXT, item_code TEXT, "
            "month TEXT, compliant INTEGER, quantity_e4 INTEGER)"
        )
        conn.executemany(
            "INSERT INTO plain_services VALUES (?, ?, ?, ?, ?, ?)",
            [(a, b, c, d, int(e), q) for a, b, c, d, e, q in rows],
        )
        conn.commit()
        conn.close()
    else:
        with pg_connect(args.pg_url, db.schema, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS plain_services")
            conn.execute(
                "CREATE TABLE plain_services (institution_code TEXT, staff_id TEXT, "
                "item_code TEXT, month TEXT, compliant BOOLEAN, quantity_e4 INTEGER)"
            )
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY plain_services ({DIMS}, quantity_e4) FROM STDIN") as copy,
            ):
                for r in rows:
                    copy.write_row(r)
            conn.execute("ANALYZE plain_services")
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# 2. rebuild rate and its baselines


GROUP_BY = (
    f"CREATE TABLE g AS SELECT {DIMS}, SUM(quantity_e4) AS quantity_e4, COUNT(*) AS records "
    f"FROM plain_services GROUP BY 1, 2, 3, 4, 5"
)


def group_by_baseline(args: argparse.Namespace, db: Db, *, keep: bool = False) -> float:
    if db.backend == "sqlite":
        assert db.sqlite_path is not None
        conn = sqlite3.connect(db.sqlite_path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("DROP TABLE IF EXISTS g")
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute(GROUP_BY)
        conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        if not keep:
            conn.execute("DROP TABLE g")
        conn.close()
        return seconds
    with pg_connect(args.pg_url, db.schema, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS g")
        started = time.perf_counter()
        conn.execute(GROUP_BY)
        seconds = time.perf_counter() - started
        if not keep:
            conn.execute("DROP TABLE g")
    return seconds


def library_read_path(app: Dangliang) -> int:
    recorder, mapper = app.log.app_recorder, app.log.mapper
    start, n = 0, 0
    while True:
        page = recorder.select_notifications(start, limit=PAGE, inclusive_of_start=False)
        for notification in page:
            mapper.to_domain_event(notification)
        n += len(page)
        if len(page) < PAGE:
            return n
        start = page[-1].id


def cube_equals_group_by(args: argparse.Namespace, db: Db) -> str:
    """The rebuilt cube, cell for cell, against the plain GROUP BY (no corrections yet)."""
    app = db.open()
    group_by_baseline(args, db, keep=True)
    projection = app.equivalents_projection()
    with app.engine.connect() as conn:
        cube = [
            (*r[:4], bool(r[4]), int(r[5]), int(r[6])) for r in eq.cube_rows(conn, projection.t)
        ]
        plain = [
            (*r[:4], bool(r[4]), int(r[5]), int(r[6]))
            for r in conn.execute(text(f"SELECT {DIMS}, quantity_e4, records FROM g"))
        ]
        conn.execute(text("DROP TABLE g"))
        conn.commit()
    plain.sort()
    cube.sort()
    if cube == plain:
        return f"OK ({len(cube):,} cells, {sum(c[6] for c in cube):,} records)"
    return f"MISMATCH (cube {len(cube):,} cells vs GROUP BY {len(plain):,})"


@dataclass
class RebuildRepeat:
    head: int
    rebuild_s: float
    blue_green_s: float
    read_s: float
    read_n: int
    group_by_s: float
    load1: float


def run_rebuild(args: argparse.Namespace, db: Db) -> tuple[list[RebuildRepeat], str]:
    app = db.open()
    reps = []
    for i in range(args.repeat):
        head = app.log.head()
        rebuild_s, got = timed(app.rebuild)
        assert got == head, (got, head)
        bg_s, _ = timed(lambda: app.rebuild(blue_green=True))
        read_s, read_n = timed(lambda: library_read_path(app))
        gb_s = group_by_baseline(args, db)
        rep = RebuildRepeat(head, rebuild_s, bg_s, read_s, read_n, gb_s, load1())
        reps.append(rep)
        log(
            f"{db.backend} rebuild repeat {i + 1}: rebuild {head / rebuild_s:,.0f} ev/s, "
            f"blue-green {head / bg_s:,.0f} ev/s, read path {read_n / read_s:,.0f} ev/s, "
            f"GROUP BY {db.records / gb_s:,.0f} rows/s (load {rep.load1:.2f})"
        )
    check = cube_equals_group_by(args, db)
    log(f"{db.backend}: cube vs GROUP BY: {check}")
    return reps, check


# --------------------------------------------------------------------------------------------
# 3. where the time goes


@dataclass
class Breakdown:
    registry_s: float = 0.0
    recorded_insert_s: float = 0.0
    changes_s: float = 0.0
    merge_s: float = 0.0
    commit_s: float = 0.0
    index_s: float = 0.0
    total_s: float = 0.0
    json_select_s: float = 0.0
    raw_scan_s: float = 0.0
    json_fenced_s: float = float("nan")  # PostgreSQL: the same SELECT, JSON parsed once per row
    batches: int = 0


def run_breakdown(db: Db) -> Breakdown:
    app = db.open()
    b = Breakdown()
    t_all = time.perf_counter()
    b.registry_s, _ = timed(app._rebuild_registry)
    p = eq.EquivalentsProjection("z")
    p.drop(app.write_engine)
    p.create(app.write_engine, indexes=False)
    head = app.log.head()
    dialect = app.write_engine.dialect.name
    recorded_sql = eq._recorded_sql(dialect, p.t.deltas.name, app.log.events_table)
    start = 0
    while start < head:
        stop = min(start + p.batch_size, head)
        with app.write_engine.begin() as conn:
            t0 = time.perf_counter()
            before = int(conn.scalar(select(func.max(p.t.deltas.c.seq))) or 0)
            params = {"start": start, "stop": stop, "topic": eq.RECORDED}
            conn.execute(text(recorded_sql), params)
            t1 = time.perf_counter()
            p._apply_changes(conn, app.log, start, stop)
            t2 = time.perf_counter()
            p._merge_into_cube(conn, dialect, before)
            t3 = time.perf_counter()
        t4 = time.perf_counter()
        b.recorded_insert_s += t1 - t0
        b.changes_s += t2 - t1
        b.merge_s += t3 - t2
        b.commit_s += t4 - t3
        b.batches += 1
        start = stop
    b.index_s, _ = timed(lambda: p.add_indexes(app.write_engine))
    b.total_s = time.perf_counter() - t_all
    p.drop(app.write_engine)
    # The JSON-extracting SELECT alone (what the INSERT reads), and a bare scan of the rows.
    select_part = recorded_sql[recorded_sql.index(") SELECT ") + 2 :]
    wrapped = (
        f"WITH x(c1, c2, c3, c4, c5, c6, c7, c8) AS ({select_part}) "
        "SELECT count(*), max(c1), max(c2), max(c3), max(c4), max(c5), "
        "sum(CASE WHEN c6 THEN 1 ELSE 0 END), sum(c7) FROM x"
    )
    raw = f"SELECT count(*), sum(length(state)) FROM {app.log.events_table} WHERE topic = :topic"
    params = {"start": 0, "stop": head, "topic": eq.RECORDED}
    with app.engine.connect() as conn:
        b.json_select_s, _ = timed(lambda: conn.execute(text(wrapped), params).fetchall())
        b.raw_scan_s, _ = timed(lambda: conn.execute(text(raw), params).fetchall())
        # PostgreSQL pulls the `convert_from(state)::jsonb AS j` subquery up into the outer
        # SELECT and so evaluates it once per `j->>…` reference (7 parses per row, see EXPLAIN
        # VERBOSE); `OFFSET 0` fences the subquery so each row is parsed once.
        fence = "AND topic = :topic) AS e"
        if dialect == "postgresql" and fence in wrapped:
            fenced = wrapped.replace(fence, "AND topic = :topic OFFSET 0) AS e")
            b.json_fenced_s, _ = timed(lambda: conn.execute(text(fenced), params).fetchall())
    return b


# --------------------------------------------------------------------------------------------
# 4. re-pricing a county-year


@dataclass
class RepriceRepeat:
    incremental_s: float
    query_only_s: float
    rebuild_s: float
    full_query_s: float
    same: bool
    changed: bool
    load1: float

    @property
    def full_s(self) -> float:
        return self.rebuild_s + self.full_query_s


def most_common_item(app: Dangliang) -> str:
    cube = app.equivalents_projection().t.cube
    with app.engine.connect() as conn:
        row = conn.execute(
            select(cube.c.item_code, func.sum(cube.c.records).label("n"))
            .group_by(cube.c.item_code)
            .order_by(text("n DESC"))
            .limit(1)
        ).one()
    return str(row[0])


def run_reprice(args: argparse.Namespace, db: Db) -> tuple[list[RepriceRepeat], str]:
    app = db.open()
    item_code = most_common_item(app)
    period = str(YEAR)
    previous = app.equivalents(period)["institutions"]  # warm
    reps = []
    for i in range(args.repeat):
        item: CatalogueItem = app.log.repository.get(catalogue_item_id(item_code))
        march = date(YEAR, 3, 1)
        current = item.value_on(march) or Decimal("1")
        item.set_value(
            value=current + Decimal("0.0125"),
            effective_from=march,
            reference=f"bench re-pricing {i + 1}",
            actor="bench",
        )
        app.log.save(item)
        incremental_s, incremental = timed(app.equivalents, period)
        query_only_s, _ = timed(app.equivalents, period)
        rebuild_s, _ = timed(app.rebuild)
        full_query_s, full = timed(app.equivalents, period)
        rep = RepriceRepeat(
            incremental_s,
            query_only_s,
            rebuild_s,
            full_query_s,
            same=incremental["institutions"] == full["institutions"],
            changed=incremental["institutions"] != previous,
            load1=load1(),
        )
        previous = incremental["institutions"]
        reps.append(rep)
        log(
            f"{db.backend} re-price repeat {i + 1}: {item_code} → {current + Decimal('0.0125')}: "
            f"incremental {incremental_s:.3f}s, replay {rep.full_s:.1f}s, "
            f"same={rep.same} changed={rep.changed}"
        )
    return reps, item_code


# --------------------------------------------------------------------------------------------
# 5. as-of queries for one month


@dataclass
class AsOfRepeat:
    catch_up_s: float
    position_s: float
    as_of_s: float
    current_s: float
    position_ok: bool
    as_of_ok: bool
    current_differs: bool
    load1: float


def march_records(county: Path, n: int) -> list[tuple[str, str]]:
    """The first n (institution, source id) pairs of March records in the services CSV."""
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    with (county / "services.csv").open(encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            if not r["service_date"].startswith(f"{YEAR}-03"):
                continue
            key = (r["institution_code"], r["source_id"])
            if key in seen:
                continue
            seen.add(key)
            out.append(key)
            if len(out) >= n:
                break
    return out


def record_changes(app: Dangliang, targets: Sequence[tuple[str, str]], i: int) -> None:
    """Corrections of several kinds and a void or two, all touching March."""
    for k, (inst, source_id) in enumerate(targets):
        record: ServiceRecord = app.log.repository.get(service_record_id(inst, source_id))
        reason = f"bench as-of {i + 1}.{k + 1}"
        kind = k % 5
        if kind == 0:
            record.correct(reason=reason, actor="bench", quantity=record.quantity + 1)
        elif kind == 1:  # moves out of March
            record.correct(reason=reason, actor="bench", service_date=date(YEAR, 4, 15))
        elif kind == 2:
            record.correct(reason=reason, actor="bench", compliant=not record.compliant)
        elif kind == 3:
            record.void(reason=reason, actor="bench")
        else:
            record.correct(
                reason=reason, actor="bench", quantity=record.quantity + 2, compliant=False
            )
        app.log.save(record)


def run_as_of(args: argparse.Namespace, db: Db) -> list[AsOfRepeat]:
    app = db.open()
    k = args.corrections
    targets = march_records(db.county, k * args.repeat)
    period = f"{YEAR}-03"
    reps = []
    for i in range(args.repeat):
        before = app.equivalents(period)
        position = before["log_head"]
        time.sleep(0.05)
        between = datetime.now(UTC)
        time.sleep(0.05)
        record_changes(app, targets[i * k : (i + 1) * k], i)
        catch_up_s, _ = timed(app.catch_up)
        position_s, at_position = timed(app.equivalents, period, position=position)
        as_of_s, at_moment = timed(app.equivalents, period, as_of=between)
        current_s, now = timed(app.equivalents, period)
        rep = AsOfRepeat(
            catch_up_s,
            position_s,
            as_of_s,
            current_s,
            position_ok=at_position["institutions"] == before["institutions"],
            as_of_ok=at_moment["institutions"] == before["institutions"]
            and at_moment["position"] == position,
            current_differs=now["institutions"] != before["institutions"],
            load1=load1(),
        )
        reps.append(rep)
        log(
            f"{db.backend} as-of repeat {i + 1}: position {position_s:.3f}s, "
            f"as_of {as_of_s:.3f}s, current {current_s:.3f}s, "
            f"ok={rep.position_ok}/{rep.as_of_ok} differs={rep.current_differs}"
        )
    return reps


# --------------------------------------------------------------------------------------------
# report


@dataclass
class BackendResult:
    backend: str
    rebuild_db: Db | None = None
    year_db: Db | None = None
    rebuild: list[RebuildRepeat] = field(default_factory=list)
    cube_check: str = ""
    breakdowns: list[Breakdown] = field(default_factory=list)
    reprice: list[RepriceRepeat] = field(default_factory=list)
    reprice_item: str = ""
    as_of: list[AsOfRepeat] = field(default_factory=list)
    setup_s: dict[str, float] = field(default_factory=dict)
    error: str = ""


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report_backend(args: argparse.Namespace, r: BackendResult) -> tuple[str, str]:
    name = "SQLite" if r.backend == "sqlite" else "PostgreSQL"
    out = [f"### {name}", ""]
    if r.error:
        out.append(f"failed: {r.error}")
    setup_rows = [
        [k, "reused" if k.endswith(": generate") and v == 0 else f"{v:.1f} s"]
        for k, v in r.setup_s.items()
    ]
    if setup_rows:
        out += ["Setup (not part of any figure below):", ""]
        out += [render_table(["step", "seconds"], setup_rows, markdown=True), ""]
    rows: list[list[str]] = []
    summary = [name + ":"]
    if r.rebuild:
        reps = r.rebuild
        head = reps[0].head
        rb = [x.head / x.rebuild_s for x in reps]
        bg = [x.head / x.blue_green_s for x in reps]
        rd = [x.read_n / x.read_s for x in reps]
        gb = [r.rebuild_db.records / x.group_by_s for x in reps]  # type: ignore[union-attr]
        ratio_rd = [x.read_s / x.rebuild_s for x in reps]
        ratio_bg_rd = [x.read_s / x.blue_green_s for x in reps]
        ratio_gb = [(x.head / x.rebuild_s) / (r.rebuild_db.records / x.group_by_s) for x in reps]  # type: ignore[union-attr]
        rate_target = TARGET_REBUILD_RATE if r.backend == "sqlite" else None
        rows += [
            [
                f"rebuild `app.rebuild()` ({head:,} events), events/s",
                fmt_rate(median(rb)),
                fmt_spread(rb, fmt_rate),
                f"≥ {rate_target:,}" if rate_target else "—",
                verdict(median(rb) >= rate_target) if rate_target else "",
            ],
            [
                "  seconds",
                fmt_s(median([x.rebuild_s for x in reps])),
                fmt_spread([x.rebuild_s for x in reps], fmt_s),
                "",
                "",
            ],
            [
                "rebuild `blue_green=True`, events/s",
                fmt_rate(median(bg)),
                fmt_spread(bg, fmt_rate),
                "",
                "",
            ],
            [
                "library read path (select_notifications + to_domain_event), events/s",
                fmt_rate(median(rd)),
                fmt_spread(rd, fmt_rate),
                "",
                "",
            ],
            [
                "plain GROUP BY (CREATE TABLE AS), rows/s",
                fmt_rate(median(gb)),
                fmt_spread(gb, fmt_rate),
                "",
                "",
            ],
            [
                "ratio rebuild / library read path",
                fmt_x(median(ratio_rd)),
                fmt_spread(ratio_rd, fmt_x),
                f"≥ {TARGET_READ_RATIO}×",
                verdict(median(ratio_rd) >= TARGET_READ_RATIO),
            ],
            [
                "ratio blue-green rebuild / library read path",
                fmt_x(median(ratio_bg_rd)),
                fmt_spread(ratio_bg_rd, fmt_x),
                "",
                "",
            ],
            [
                "ratio rebuild / plain GROUP BY",
                fmt_x(median(ratio_gb)),
                fmt_spread(ratio_gb, fmt_x),
                "",
                "",
            ],
        ]
        summary.append(
            f"rebuild {fmt_rate(median(rb))} ev/s ({fmt_x(median(ratio_rd))} read path, "
            f"{fmt_x(median(ratio_gb))} GROUP BY), blue-green {fmt_rate(median(bg))} ev/s;"
        )
    if r.reprice:
        reps2 = r.reprice
        inc = [x.incremental_s for x in reps2]
        full = [x.full_s for x in reps2]
        ratio = [x.full_s / x.incremental_s for x in reps2]
        n = r.year_db.records  # type: ignore[union-attr]
        rows += [
            [
                f"re-price {n:,}-record county-year: `app.equivalents('{YEAR}')` "
                "after 1 value change",
                fmt_s(median(inc)),
                fmt_spread(inc, fmt_s),
                "< 1 s",
                verdict(median(inc) < TARGET_REPRICE_S),
            ],
            [
                "  same query, nothing to catch up",
                fmt_s(median([x.query_only_s for x in reps2])),
                fmt_spread([x.query_only_s for x in reps2], fmt_s),
                "",
                "",
            ],
            [
                "full replay: `app.rebuild()` + the query",
                fmt_s(median(full)),
                fmt_spread(full, fmt_s),
                "",
                "",
            ],
            [
                "ratio full replay / re-price",
                fmt_x(median(ratio)),
                fmt_spread(ratio, fmt_x),
                "",
                "",
            ],
        ]
        same = "OK" if all(x.same and x.changed for x in reps2) else "MISMATCH"
        summary.append(
            f"re-price {n / 1e6:g}M year {fmt_s(median(inc))} vs replay {fmt_s(median(full))} "
            f"({fmt_x(median(ratio))}, {same});"
        )
    if r.as_of:
        reps3 = r.as_of
        pos = [x.position_s for x in reps3]
        mom = [x.as_of_s for x in reps3]
        cur = [x.current_s for x in reps3]
        cu = [x.catch_up_s for x in reps3]
        rows += [
            [
                f"as-of `app.equivalents('{YEAR}-03', position=P)`",
                fmt_s(median(pos)),
                fmt_spread(pos, fmt_s),
                "< 1 s",
                verdict(median(pos) < TARGET_ASOF_S),
            ],
            [
                f"as-of `app.equivalents('{YEAR}-03', as_of=moment)`",
                fmt_s(median(mom)),
                fmt_spread(mom, fmt_s),
                "< 1 s",
                verdict(median(mom) < TARGET_ASOF_S),
            ],
            [
                f"current `app.equivalents('{YEAR}-03')`",
                fmt_s(median(cur)),
                fmt_spread(cur, fmt_s),
                "",
                "",
            ],
            [
                f"  catch-up of the {args.corrections} corrections/voids (before the above)",
                fmt_s(median(cu)),
                fmt_spread(cu, fmt_s),
                "",
                "",
            ],
        ]
        ok = all(x.position_ok and x.as_of_ok for x in reps3)
        differs = all(x.current_differs for x in reps3)
        summary.append(
            f"as-of month {fmt_s(median(pos))} (position) / {fmt_s(median(mom))} (moment), "
            f"current {fmt_s(median(cur))}, as-of {'OK' if ok else 'MISMATCH'}"
            + ("" if differs else " (current did not change!)")
        )
    if rows:
        out += [
            render_table(["measure", "median", "min – max", "target", ""], rows, markdown=True),
            "",
        ]
    checks = []
    if r.cube_check:
        checks.append(f"- rebuilt cube vs plain GROUP BY: {r.cube_check}")
    if r.reprice:
        checks.append(
            f"- re-priced item {r.reprice_item} (most common), effective {YEAR}-03-01: "
            "incremental answer == full-replay answer in every repeat: "
            + ("OK" if all(x.same for x in r.reprice) else "MISMATCH")
            + "; the answer changed after each value change: "
            + ("yes" if all(x.changed for x in r.reprice) else "NO")
        )
    if r.as_of:
        checks.append(
            "- as-of answers == the answer captured before the changes: "
            + ("OK" if all(x.position_ok and x.as_of_ok for x in r.as_of) else "MISMATCH")
            + "; current answer differs from it: "
            + ("yes" if all(x.current_differs for x in r.as_of) else "NO")
        )
    loads = [x.load1 for x in r.rebuild] + [x.load1 for x in r.reprice] + [x.load1 for x in r.as_of]
    if loads:
        checks.append(
            f"- 1-minute load average after each repeat: {min(loads):.2f} – {max(loads):.2f}"
        )
    if checks:
        out += ["Checks:", "", *checks, ""]
    if r.breakdowns:
        bs = r.breakdowns
        m = {k: median([getattr(b, k) for b in bs]) for k in vars(bs[0]) if k != "batches"}
        total = m["total_s"]
        parts = [
            ("registry rebuild (reference data, replayed through the mapper)", m["registry_s"]),
            ("Recorded JSON → eq_deltas (INSERT … SELECT json_extract)", m["recorded_insert_s"]),
            ("corrections/voids scan (`_apply_changes`)", m["changes_s"]),
            ("merge deltas → eq_cube (INSERT … GROUP BY … ON CONFLICT)", m["merge_s"]),
            ("commits", m["commit_s"]),
            ("index on eq_deltas(month, notification_id)", m["index_s"]),
        ]
        steps = ("registry_s", "recorded_insert_s", "changes_s", "merge_s", "commit_s", "index_s")
        other = median([b.total_s - sum(getattr(b, k) for k in steps) for b in bs])
        drows = [[k, fmt_s(v), f"{100 * v / total:.0f}%"] for k, v in parts]
        drows.append(["other (create tables, tracking)", fmt_s(other), ""])
        drows.append(["total (scratch projection, same steps as a rebuild)", fmt_s(total), "100%"])
        drows.append(
            [
                "for comparison: the JSON-extracting SELECT alone, no insert",
                fmt_s(m["json_select_s"]),
                "",
            ]
        )
        if m["json_fenced_s"] == m["json_fenced_s"]:
            drows.append(
                [
                    "for comparison: same SELECT, JSON parsed once per row (subquery OFFSET 0)",
                    fmt_s(m["json_fenced_s"]),
                    "",
                ]
            )
        drows.append(
            [
                "for comparison: bare scan of the Recorded rows (count, length)",
                fmt_s(m["raw_scan_s"]),
                "",
            ]
        )
        out += [
            f"Where the time of a rebuild goes (median of {len(bs)}, {bs[0].batches} batch(es) of "
            f"{eq.EquivalentsProjection.batch_size:,} notification ids):",
            "",
            render_table(["step", "seconds", "share"], drows, markdown=True),
            "",
        ]
    return "\n".join(out), " ".join(summary)


# --------------------------------------------------------------------------------------------
# main


def run_backend(args: argparse.Namespace, backend: str) -> BackendResult:
    result = BackendResult(backend)
    dbs: dict[int, Db] = {}
    try:
        t0 = time.perf_counter()
        db = setup_db(args, backend, args.records)
        dbs[args.records] = db
        result.rebuild_db = db
        for k, v in db.setup.items():
            result.setup_s[f"{args.records:,}: {k}"] = v
        plain_s = load_plain(args, db)
        result.setup_s[f"{args.records:,}: plain_services table for the GROUP BY"] = plain_s
        total = time.perf_counter() - t0
        result.setup_s[f"{args.records:,}: total setup"] = total
        log(f"{backend}: setup of {args.records:,} took {total:.1f}s")
        result.rebuild, result.cube_check = run_rebuild(args, db)
        for i in range(args.repeat):
            result.breakdowns.append(run_breakdown(db))
            log(f"{backend}: breakdown {i + 1} done")
        if args.county_year_records != args.records:
            drop_db(args, db)  # disk and cache room for the larger county
            del dbs[args.records]
            t0 = time.perf_counter()
            ydb = setup_db(args, backend, args.county_year_records)
            dbs[args.county_year_records] = ydb
            for k, v in ydb.setup.items():
                result.setup_s[f"{args.county_year_records:,}: {k}"] = v
            total = time.perf_counter() - t0
            result.setup_s[f"{args.county_year_records:,}: total setup"] = total
            log(f"{backend}: setup of {args.county_year_records:,} took {total:.1f}s")
        else:
            ydb = db
        result.year_db = ydb
        result.reprice, result.reprice_item = run_reprice(args, ydb)
        result.as_of = run_as_of(args, ydb)
    except Exception as e:  # report what was measured so far
        import traceback

        traceback.print_exc()
        result.error = f"{type(e).__name__}: {e}"
    finally:
        for d in dbs.values():
            with contextlib.suppress(Exception):
                drop_db(args, d)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--county-year-records", type=int, default=4_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dangliang-bench-projections"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--corrections", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the SQLite files")
    args = parser.parse_args()
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    pgv = pg_version(args.pg_url) if "postgres" in backends else None
    if "postgres" in backends and pgv is None:
        backends.remove("postgres")
    started = time.perf_counter()
    started_at = datetime.now()
    commit_at_start = git_describe(list_files=False)
    results = [run_backend(args, b) for b in backends]
    elapsed = time.perf_counter() - started
    info = machine_info(
        {
            "postgresql": pgv or "not used",
            **library_versions(),
            "commit": git_describe(list_files=False),
        }
    )
    if info["commit"] != commit_at_start:
        info["commit"] = f"{commit_at_start} at the start, {info['commit']} at the end"
    out = [
        "## Projection benchmark",
        "",
        f"Run {started_at:%Y-%m-%d %H:%M} – {datetime.now():%H:%M} "
        f"({timedelta(seconds=round(elapsed))}), "
        f"command: `python benchmarks/projection_benchmark.py {' '.join(sys.argv[1:])}`",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
    ]
    summaries = []
    for r in results:
        text_, summary = report_backend(args, r)
        out += [text_, ""]
        summaries.append(summary)
    out += ["Summary:", "", *summaries]
    print("\n".join(out))


if __name__ == "__main__":
    main()
