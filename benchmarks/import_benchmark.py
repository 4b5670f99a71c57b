#!/usr/bin/env python
"""Import benchmark: `dangliang import` of N service records against plain-database baselines.

Run from the project's virtualenv (see benchmarks/README.md):

    python benchmarks/import_benchmark.py --records 1000000 --repeat 3 --backend both --profile

What it does (every timing of dangliang goes through the real CLI, as a subprocess, so it
measures whatever the installed code does at the moment it runs):

1. generates the synthetic county once (`dangliang generate --seed 42`), reused while N matches;
2. SQLite, per repeat: a fresh database file with the reference data loaded (not timed), then
   `dangliang import` (wall clock of the whole process: start-up, validation, write, final WAL
   checkpoint) and a second, idempotent import of the same file; baselines in the same repeat:
   `csv.reader` (read timed alone) + `sqlite3.executemany` into a plain table with
   UNIQUE(institution_code, source_id), and a raw insert into the library's own event-table
   layout (random 32-hex ids, ~75-byte compact states); both WAL + synchronous=NORMAL, one
   transaction per batch;
3. PostgreSQL, per repeat: a fresh schema, `dangliang import` and re-import; baseline: `COPY`
   (psycopg `cursor.copy`) of the same rows into a plain table with the same UNIQUE key;
4. `--profile`: one in-process SQLite import under cProfile (all threads), top functions by
   tottime and `ImportResult.seconds` (validate vs write phases);
5. peak RSS of every import subprocess (per-child `os.wait4` rusage), plus an import of the
   first N/4 rows, to show whether memory grows with N.

Figures are medians over the repeats; ratios are computed within each repeat, then the median
of those ratios is reported. Only the standard library and the project's own dependencies.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import csv
import hashlib
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

# `benchmarks/` is first on sys.path when this runs as `python benchmarks/import_benchmark.py`
from common import (
    REPO,
    dangliang_command,
    fmt_rate,
    fmt_s,
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

SEED = 42
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
RECORDED_TOPIC = "S"  # service records as imported: the compact form


@dataclass
class Run:
    wall: float
    maxrss_kib: int
    rc: int
    stdout: str
    stderr: str
    load1: float = float("nan")  # 1-minute load average when it ended: how busy the box was


def run_cli(args: Sequence[str], *, check: bool = True) -> Run:
    """Run `dangliang ARGS` as a child process; wall clock and that child's own peak RSS
    (os.wait4 returns the rusage of exactly this child, not a running maximum)."""
    env = dict(os.environ)
    env.pop("DANGLIANG_DB", None)
    env["DANGLIANG_ACTOR"] = "bench"
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*dangliang_command(), *args], stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        out.seek(0)
        err.seek(0)
        run = Run(
            wall,
            usage.ru_maxrss,  # KiB on Linux
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            os.getloadavg()[0],
        )
    if check and run.rc != 0:
        raise SystemExit(
            f"dangliang {' '.join(args)} failed (exit {run.rc}):\n{run.stdout}\n{run.stderr}"
        )
    return run


def parse_summary(stdout: str) -> dict[str, float]:
    """Counts and the CLI's own in-process elapsed time from the import summary line; missing
    keys are left out (the wording may change while the importer is being worked on)."""
    out: dict[str, float] = {}
    for key, pattern in (
        ("new", r"(\d+) new"),
        ("present", r"(\d+) already present"),
        ("rejected", r"(\d+) rejected"),
        ("elapsed", r" in ([\d.]+)s"),
    ):
        m = re.search(pattern, stdout)
        if m:
            out[key] = float(m.group(1))
    return out


_SOURCES: dict[str, dict[str, str]] = {}  # fingerprint → {file: sha256}, to name what changed


def source_fingerprint() -> str:
    """A short hash of every .py file under src/ (remembered, so that a change between two
    repeats can be reported file by file)."""
    files = {
        str(path.relative_to(REPO)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((REPO / "src").rglob("*.py"))
    }
    fingerprint = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
    _SOURCES[fingerprint] = files
    return fingerprint


def changed_files(a: str, b: str) -> list[str]:
    fa, fb = _SOURCES.get(a, {}), _SOURCES.get(b, {})
    return sorted(f for f in fa.keys() | fb.keys() if fa.get(f) != fb.get(f))


# --------------------------------------------------------------------------------------------
# the county


def ensure_county(workdir: Path, records: int) -> Path:
    county = workdir / "county"
    meta = county / "bench-meta.json"
    want = {"records": records, "seed": SEED}
    services = county / "services.csv"
    if meta.exists() and services.exists():
        with contextlib.suppress(ValueError):
            if json.loads(meta.read_text()) == want:
                log(f"reusing county in {county} ({records:,} records, seed {SEED})")
                return county
    if county.exists():
        shutil.rmtree(county)
    log(f"generating county: {records:,} records, seed {SEED} …")
    run = run_cli(
        ["generate", "--out", str(county), "--records", str(records), "--seed", str(SEED)]
    )
    log(f"generated in {run.wall:.1f}s")
    quarter = county / "services_quarter.csv"
    with (
        services.open("r", encoding="utf-8", newline="") as src,
        quarter.open("w", encoding="utf-8", newline="") as dst,
    ):
        dst.write(src.readline())
        for i, line in enumerate(src):
            if i >= records // 4:
                break
            dst.write(line)
    meta.write_text(json.dumps(want))
    return county


def csv_batches(path: Path, batch_size: int, timer: list[float]) -> Iterator[list[list[str]]]:
    """The file's data rows from `csv.reader`, in batches; time spent reading added to timer[0]."""
    with path.open("r", encoding="utf-8", newline="") as f:
        started = time.perf_counter()
        reader = csv.reader(f)
        next(reader)  # header
        batch: list[list[str]] = []
        for row in reader:
            batch.append(row)
            if len(batch) >= batch_size:
                timer[0] += time.perf_counter() - started
                yield batch
                batch = []
                started = time.perf_counter()
        timer[0] += time.perf_counter() - started
        if batch:
            yield batch


def load_reference(county: Path, db_url: str) -> None:
    for group, name in (
        ("institutions", "institutions.csv"),
        ("staff", "staff.csv"),
        ("catalog", "catalogue.csv"),
    ):
        run_cli([group, "load", str(county / name), "--db", db_url])


# --------------------------------------------------------------------------------------------
# SQLite


@dataclass
class SqliteRepeat:
    imp: Run
    reimp: Run
    quarter: Run | None
    imp_counts: dict[str, float]
    reimp_counts: dict[str, float]
    stored: int
    csv_read: float  # seconds
    em_insert: float  # seconds
    raw_insert: float  # seconds
    rows: int
    db_mib: float
    code: str = ""  # src/ fingerprint when the import ran (the code may change between repeats)


def sqlite_executemany_baseline(
    county: Path, db: Path, batch_size: int, cache_mib: int
) -> tuple[float, float, int]:
    """csv.reader + executemany into a plain UNIQUE table: (read s, insert s, rows)."""
    remove_sqlite(db)
    read_timer = [0.0]
    insert = 0.0
    rows = 0
    started = time.perf_counter()
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if cache_mib:
        conn.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
    conn.execute(
        "CREATE TABLE services (institution_code TEXT, source_id TEXT, staff_id, item_code, "
        "quantity TEXT, service_date TEXT, patient_ref, compliant, "
        "UNIQUE(institution_code, source_id))"
    )
    insert += time.perf_counter() - started
    sql = (
        "INSERT INTO services (source_id, institution_code, staff_id, item_code, quantity, "
        "service_date, patient_ref, compliant) VALUES (?,?,?,?,?,?,?,?)"
    )
    for batch in csv_batches(county / "services.csv", batch_size, read_timer):
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(sql, batch)
        conn.execute("COMMIT")
        insert += time.perf_counter() - started
        rows += len(batch)
    started = time.perf_counter()
    conn.close()  # the last connection checkpoints the WAL
    insert += time.perf_counter() - started
    remove_sqlite(db)
    return read_timer[0], insert, rows


_STATE = (  # the compact form dangliang stores (dangliang.ledger.compact)
    '[{us},"C{inst:02d}V{vil:02d}","HIS{src:09d}","S{staff:05d}","BM{item:03d}",'
    '"2024-{m:02d}-{d:02d}","P{pat:012x}",{qty}]'
)


def raw_event_rows(rng: random.Random, n: int) -> list[tuple[str, int, str, bytes]]:
    rows = []
    for _ in range(n):
        r = rng.getrandbits
        state = _STATE.format(
            us=r(16),
            inst=r(4),
            vil=r(6),
            src=r(24),
            staff=r(10),
            item=r(6),
            qty=r(3) + 1,
            m=r(3) + 1,
            d=r(4) + 1,
            pat=r(48),
        ).encode()
        rows.append((f"{r(128):032x}", 1, RECORDED_TOPIC, state))
    return rows


def sqlite_raw_event_baseline(
    db: Path, n: int, batch_size: int, cache_mib: int, seed: int
) -> tuple[float, int, float]:
    """Raw insert into the library's event-table layout: (insert s, rows, mean state bytes)."""
    remove_sqlite(db)
    rng = random.Random(seed)
    insert = 0.0
    rows = 0
    state_bytes = 0
    started = time.perf_counter()
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if cache_mib:
        conn.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
    conn.execute(
        "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
        "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
    )
    insert += time.perf_counter() - started
    sql = (
        "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
        "VALUES (?,?,?,?)"
    )
    while rows < n:
        batch = raw_event_rows(rng, min(batch_size, n - rows))  # not timed
        state_bytes += sum(len(b[3]) for b in batch)
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(sql, batch)
        conn.execute("COMMIT")
        insert += time.perf_counter() - started
        rows += len(batch)
    started = time.perf_counter()
    conn.close()
    insert += time.perf_counter() - started
    remove_sqlite(db)
    return insert, rows, state_bytes / max(rows, 1)


def count_sqlite_recorded(db: Path) -> int:
    conn = sqlite3.connect(str(db))
    try:
        total = 0
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:  # the library's events table, whatever it is called
            if "topic" in {c[1] for c in conn.execute(f'PRAGMA table_info("{t}")')}:
                total += int(
                    conn.execute(
                        f'SELECT count(*) FROM "{t}" WHERE topic = ?', (RECORDED_TOPIC,)
                    ).fetchone()[0]
                )
        return total
    finally:
        conn.close()


def run_sqlite(args: argparse.Namespace, county: Path, workdir: Path) -> list[SqliteRepeat]:
    out: list[SqliteRepeat] = []
    d = workdir / "sqlite"
    d.mkdir(parents=True, exist_ok=True)
    services = county / "services.csv"
    batch = ["--batch-size", str(args.batch_size)]
    for i in range(args.repeat):
        tag = f"[sqlite {i + 1}/{args.repeat}]"
        db = d / f"bench-{i}.db"
        remove_sqlite(db)
        url = f"sqlite:///{db}"
        load_reference(county, url)
        code = source_fingerprint()
        log(f"{tag} dangliang import … (src {code})")
        imp = run_cli(["import", str(services), "--db", url, *batch])
        imp_counts = parse_summary(imp.stdout)
        log(f"{tag}   {imp.wall:.1f}s  {args.records / imp.wall:,.0f} rows/s  {imp.stdout.strip()}")
        log(f"{tag} dangliang re-import …")
        reimp = run_cli(["import", str(services), "--db", url, *batch])
        reimp_counts = parse_summary(reimp.stdout)
        log(f"{tag}   {reimp.wall:.1f}s  {args.records / reimp.wall:,.0f} rows/s")
        stored = count_sqlite_recorded(db)
        db_mib = db.stat().st_size / 2**20
        remove_sqlite(db)
        quarter = None
        if not args.no_quarter:
            qdb = d / f"bench-{i}-quarter.db"
            remove_sqlite(qdb)
            load_reference(county, f"sqlite:///{qdb}")
            quarter = run_cli(
                ["import", str(county / "services_quarter.csv"), "--db", f"sqlite:///{qdb}", *batch]
            )
            log(
                f"{tag} N/4 import: {quarter.wall:.1f}s, "
                f"peak RSS {quarter.maxrss_kib / 1024:.0f} MiB"
            )
            remove_sqlite(qdb)
        log(f"{tag} baseline: csv.reader + executemany (UNIQUE) …")
        read_s, em_s, rows = sqlite_executemany_baseline(
            county, d / f"baseline-{i}.db", args.batch_size, args.baseline_cache_mib
        )
        log(f"{tag}   read {read_s:.1f}s, insert {em_s:.1f}s, {rows:,} rows")
        log(f"{tag} baseline: raw insert into the event-table layout …")
        raw_s, raw_rows, state_len = sqlite_raw_event_baseline(
            d / f"raw-{i}.db", rows, args.batch_size, args.baseline_cache_mib, seed=SEED + i
        )
        log(f"{tag}   insert {raw_s:.1f}s, {raw_rows:,} rows, state {state_len:.0f} bytes avg")
        out.append(
            SqliteRepeat(
                imp,
                reimp,
                quarter,
                imp_counts,
                reimp_counts,
                stored,
                read_s,
                em_s,
                raw_s,
                rows,
                db_mib,
                code,
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# PostgreSQL


@dataclass
class PgRepeat:
    imp: Run
    reimp: Run
    imp_counts: dict[str, float]
    reimp_counts: dict[str, float]
    stored: int
    csv_read: float
    copy: float
    rows: int
    code: str = ""
    quarter: Run | None = None


def pg_copy_baseline(
    base_url: str, schema: str, county: Path, batch_size: int
) -> tuple[float, float, int]:
    """csv.reader + COPY (psycopg cursor.copy) into a plain UNIQUE table: (read s, copy s, rows)."""
    read_timer = [0.0]
    copy_s = 0.0
    rows = 0
    pg_drop_schema(base_url, schema)
    with pg_connect(base_url) as conn:
        started = time.perf_counter()
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".services (institution_code TEXT, source_id TEXT, '
            "staff_id TEXT, item_code TEXT, quantity TEXT, service_date TEXT, patient_ref TEXT, "
            "compliant TEXT, UNIQUE(institution_code, source_id))"
        )
        conn.commit()
        copy_s += time.perf_counter() - started
        sql = (
            f'COPY "{schema}".services (source_id, institution_code, staff_id, item_code, '
            "quantity, service_date, patient_ref, compliant) FROM STDIN"
        )
        for batch in csv_batches(county / "services.csv", batch_size, read_timer):
            started = time.perf_counter()
            with conn.cursor() as cur, cur.copy(sql) as copy:
                for row in batch:
                    copy.write_row(row)
            conn.commit()
            copy_s += time.perf_counter() - started
            rows += len(batch)
    pg_drop_schema(base_url, schema)
    return read_timer[0], copy_s, rows


def count_pg_recorded(base_url: str, schema: str) -> int:
    with pg_connect(base_url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = %s AND column_name = 'topic'",
            (schema,),
        ).fetchall()
        total = 0
        for (t,) in tables:  # the library's events table (`dangliang_events` on PostgreSQL)
            total += int(
                conn.execute(
                    f'SELECT count(*) FROM "{schema}"."{t}" WHERE topic = %s', (RECORDED_TOPIC,)
                ).fetchone()[0]
            )
        return total


def run_postgres(args: argparse.Namespace, county: Path) -> list[PgRepeat]:
    out: list[PgRepeat] = []
    services = county / "services.csv"
    batch = ["--batch-size", str(args.batch_size)]
    base = args.pg_url
    for i in range(args.repeat):
        tag = f"[postgres {i + 1}/{args.repeat}]"
        schema = f"bench_{os.getpid()}_{i}"
        url = f"{base}?schema={schema}"
        pg_drop_schema(base, schema)
        try:
            load_reference(county, url)
            code = source_fingerprint()
            log(f"{tag} dangliang import … (src {code})")
            imp = run_cli(["import", str(services), "--db", url, *batch])
            log(
                f"{tag}   {imp.wall:.1f}s  {args.records / imp.wall:,.0f} rows/s  "
                f"{imp.stdout.strip()}"
            )
            log(f"{tag} dangliang re-import …")
            reimp = run_cli(["import", str(services), "--db", url, *batch])
            log(f"{tag}   {reimp.wall:.1f}s  {args.records / reimp.wall:,.0f} rows/s")
            stored = count_pg_recorded(base, schema)
        finally:
            pg_drop_schema(base, schema)
        quarter = None
        if not args.no_quarter:
            qschema = f"{schema}_quarter"
            qurl = f"{base}?schema={qschema}"
            pg_drop_schema(base, qschema)
            try:
                load_reference(county, qurl)
                quarter = run_cli(
                    ["import", str(county / "services_quarter.csv"), "--db", qurl, *batch]
                )
            finally:
                pg_drop_schema(base, qschema)
            log(
                f"{tag} N/4 import: {quarter.wall:.1f}s, "
                f"peak RSS {quarter.maxrss_kib / 1024:.0f} MiB"
            )
        log(f"{tag} baseline: csv.reader + COPY (UNIQUE) …")
        read_s, copy_s, rows = pg_copy_baseline(base, schema + "_copy", county, args.batch_size)
        log(f"{tag}   read {read_s:.1f}s, copy {copy_s:.1f}s, {rows:,} rows")
        out.append(
            PgRepeat(
                imp,
                reimp,
                parse_summary(imp.stdout),
                parse_summary(reimp.stdout),
                stored,
                read_s,
                copy_s,
                rows,
                code,
                quarter,
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# profile


@dataclass
class ProfileResult:
    wall: float
    seconds: dict[str, float]
    rows: int
    inserted: int
    code: str
    plain_wall: float  # the same import in-process without the profiler
    plain_seconds: dict[str, float]
    stats: dict[Any, Any] = field(default_factory=dict)  # merged pstats dict
    # (thread, busy tottime, waiting tottime, top busy functions)
    per_thread: list[tuple[str, float, float, list[tuple[float, str]]]] = field(
        default_factory=list
    )


def _func_name(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name  # a builtin, e.g. "<method 'executemany' of 'sqlite3.Cursor' objects>"
    path = filename
    for marker in ("/site-packages/", "/src/", "/lib/python"):
        if marker in filename:
            path = filename.split(marker, 1)[1]
            break
    return f"{path}:{line}({name})"


_WAITS = (
    "<method 'acquire' of '_thread.lock' objects>",
    "<method 'acquire' of '_thread.RLock' objects>",
    "<method 'get' of '_queue.SimpleQueue' objects>",
)


def is_wait(name: str) -> bool:
    """Blocking on another thread (a future's result, an idle worker's queue): not CPU."""
    return name in _WAITS


def run_profile(args: argparse.Namespace, county: Path, workdir: Path) -> ProfileResult:
    """One SQLite import in-process under cProfile; every thread the import starts (the
    look-up and the write workers) gets its own profiler, merged afterwards."""
    import pstats

    from dangliang.application import bootstrap
    from dangliang.settings import Settings

    db = workdir / "sqlite" / "profile.db"
    db.parent.mkdir(parents=True, exist_ok=True)

    def fresh_app() -> Any:
        remove_sqlite(db)
        app = bootstrap(Settings(f"sqlite:///{db}"))
        for load, name in (
            (app.load_institutions, "institutions.csv"),
            (app.load_staff, "staff.csv"),
            (app.load_catalogue, "catalogue.csv"),
        ):
            load(county / name, actor="bench")
        return app

    # First the same import in-process without the profiler: the phase split it reports is
    # the real one (the profiler inflates Python-heavy validation more than C-heavy writing).
    app = fresh_app()
    try:
        log("[profile] in-process import without the profiler …")
        started = time.perf_counter()
        plain = app.import_services(
            county / "services.csv", actor="bench", today=date.today(), batch_size=args.batch_size
        )
        plain_wall = time.perf_counter() - started
    finally:
        app.close()
        remove_sqlite(db)
    log(f"[profile]   {plain_wall:.1f}s; phases {plain.seconds}")

    app = fresh_app()
    try:
        profiles: list[tuple[str, cProfile.Profile]] = []
        original_run = threading.Thread.run

        def profiled_run(self: threading.Thread) -> None:
            p = cProfile.Profile()
            p.enable()
            try:
                original_run(self)
            finally:
                p.disable()
                profiles.append((self.name, p))

        main = cProfile.Profile()
        threading.Thread.run = profiled_run  # type: ignore[method-assign]
        try:
            code = source_fingerprint()
            log(f"[profile] in-process import under cProfile … (src {code})")
            started = time.perf_counter()
            main.enable()
            result = app.import_services(
                county / "services.csv",
                actor="bench",
                today=date.today(),
                batch_size=args.batch_size,
            )
            main.disable()
            wall = time.perf_counter() - started
        finally:
            threading.Thread.run = original_run  # type: ignore[method-assign]
    finally:
        app.close()
        remove_sqlite(db)
    log(f"[profile]   {wall:.1f}s under the profiler; phases {result.seconds}")
    merged = pstats.Stats(main)
    per_thread = []
    for name, p in [("MainThread", main), *profiles]:
        st = pstats.Stats(p)
        if p is not main:
            merged.add(p)
        items = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
        busy = [(v[2], _func_name(k)) for k, v in items if not is_wait(_func_name(k))]
        waits = sum(v[2] for k, v in items if is_wait(_func_name(k)))
        per_thread.append((name, sum(t for t, _ in busy), waits, busy[:5]))
    return ProfileResult(
        wall,
        dict(result.seconds),
        result.rows,
        result.inserted,
        code,
        plain_wall,
        dict(plain.seconds),
        merged.stats,
        per_thread,  # type: ignore[attr-defined]
    )


# --------------------------------------------------------------------------------------------
# report


def load_note(reps: Sequence[SqliteRepeat | PgRepeat]) -> str:
    loads = [r.imp.load1 for r in reps] + [r.reimp.load1 for r in reps]
    return (
        f"\n  machine load: 1-minute load average at the end of the timed imports "
        f"{min(loads):.1f} – {max(loads):.1f} on {os.cpu_count()} CPUs"
    )


def code_note(reps: Sequence[SqliteRepeat | PgRepeat]) -> str:
    codes = [r.code for r in reps]
    if len(set(codes)) <= 1:
        return ""
    files = sorted({f for c in codes for f in changed_files(codes[0], c)})
    return (
        "\n  !! the code under src/ differed between repeats (src fingerprint per repeat: "
        + ", ".join(f"{i + 1}: {c}" for i, c in enumerate(codes))
        + f"; files that differ: {', '.join(files)}): the medians may mix versions"
    )


def report_sqlite(args: argparse.Namespace, reps: list[SqliteRepeat]) -> str:
    n = args.records
    imp = [n / r.imp.wall for r in reps]
    reimp = [n / r.reimp.wall for r in reps]
    in_cli = [n / r.imp_counts["elapsed"] for r in reps if r.imp_counts.get("elapsed")]
    read = [r.rows / r.csv_read for r in reps]
    em = [r.rows / r.em_insert for r in reps]
    em_total = [r.rows / (r.csv_read + r.em_insert) for r in reps]
    raw = [r.rows / r.raw_insert for r in reps]
    rows = [
        ("dangliang import (CLI subprocess, wall)", imp, [r.imp.wall for r in reps]),
        (
            "  same, CLI's own in-process timer",
            in_cli,
            [r.imp_counts["elapsed"] for r in reps if r.imp_counts.get("elapsed")],
        ),
        ("dangliang re-import (all already present)", reimp, [r.reimp.wall for r in reps]),
        ("csv.reader, read only", read, [r.csv_read for r in reps]),
        ("executemany UNIQUE table, insert only", em, [r.em_insert for r in reps]),
        (
            "executemany UNIQUE table, read + insert",
            em_total,
            [r.csv_read + r.em_insert for r in reps],
        ),
        ("raw insert, library event-table layout", raw, [r.raw_insert for r in reps]),
    ]
    body = render_table(
        ["SQLite", "rows/s (median)", "min – max", "seconds (median)"],
        [
            (name, fmt_rate(median(v)), fmt_spread(v, fmt_rate), fmt_s(median(s)))
            for name, v, s in rows
            if v
        ],
        [False, True, True, True],
    )
    ratios = [
        (
            "dangliang / executemany (read + insert)",
            [a / b for a, b in zip(imp, em_total, strict=True)],
        ),
        ("dangliang / executemany (insert only)", [a / b for a, b in zip(imp, em, strict=True)]),
        ("dangliang / raw event-table insert", [a / b for a, b in zip(imp, raw, strict=True)]),
        ("re-import / import", [a / b for a, b in zip(reimp, imp, strict=True)]),
    ]
    ratio_table = render_table(
        ["ratio of rates (per repeat, median)", "median", "min – max"],
        [(name, f"{median(v):.2f}", fmt_spread(v, lambda x: f"{x:.2f}")) for name, v in ratios],
        [False, True, True],
    )
    checks = []
    for i, r in enumerate(reps):
        if (
            r.stored != n
            or r.imp_counts.get("new", n) != n
            or r.reimp_counts.get("present", n) != n
        ):
            checks.append(
                f"  !! repeat {i + 1}: stored {r.stored:,} Recorded events, import said "
                f"{r.imp_counts}, re-import said {r.reimp_counts} (expected {n:,})"
            )
    verified = (
        f"  check: every repeat stored exactly {n:,} ServiceRecord.Recorded events; the "
        f"re-import found all {n:,} already present; "
        f"database file {median([r.db_mib for r in reps]):,.0f} MiB"
        if not checks
        else "\n".join(checks)
    )
    return f"{body}\n\n{ratio_table}\n\n{verified}{load_note(reps)}{code_note(reps)}"


def report_postgres(args: argparse.Namespace, reps: list[PgRepeat]) -> str:
    n = args.records
    imp = [n / r.imp.wall for r in reps]
    reimp = [n / r.reimp.wall for r in reps]
    in_cli = [n / r.imp_counts["elapsed"] for r in reps if r.imp_counts.get("elapsed")]
    read = [r.rows / r.csv_read for r in reps]
    cp = [r.rows / r.copy for r in reps]
    cp_total = [r.rows / (r.csv_read + r.copy) for r in reps]
    rows = [
        ("dangliang import (CLI subprocess, wall)", imp, [r.imp.wall for r in reps]),
        (
            "  same, CLI's own in-process timer",
            in_cli,
            [r.imp_counts["elapsed"] for r in reps if r.imp_counts.get("elapsed")],
        ),
        ("dangliang re-import (all already present)", reimp, [r.reimp.wall for r in reps]),
        ("csv.reader, read only", read, [r.csv_read for r in reps]),
        ("COPY UNIQUE table, copy only", cp, [r.copy for r in reps]),
        ("COPY UNIQUE table, read + copy", cp_total, [r.csv_read + r.copy for r in reps]),
    ]
    body = render_table(
        ["PostgreSQL", "rows/s (median)", "min – max", "seconds (median)"],
        [
            (name, fmt_rate(median(v)), fmt_spread(v, fmt_rate), fmt_s(median(s)))
            for name, v, s in rows
            if v
        ],
        [False, True, True, True],
    )
    ratios = [
        ("dangliang / COPY (read + copy)", [a / b for a, b in zip(imp, cp_total, strict=True)]),
        ("dangliang / COPY (copy only)", [a / b for a, b in zip(imp, cp, strict=True)]),
        ("re-import / import", [a / b for a, b in zip(reimp, imp, strict=True)]),
    ]
    ratio_table = render_table(
        ["ratio of rates (per repeat, median)", "median", "min – max"],
        [(name, f"{median(v):.2f}", fmt_spread(v, lambda x: f"{x:.2f}")) for name, v in ratios],
        [False, True, True],
    )
    bad = [r for r in reps if r.stored != n or r.imp_counts.get("new", n) != n]
    verified = (
        f"  check: every repeat stored exactly {n:,} ServiceRecord.Recorded events"
        if not bad
        else f"  !! stored counts {[r.stored for r in reps]}, expected {n:,}"
    )
    return f"{body}\n\n{ratio_table}\n\n{verified}{load_note(reps)}{code_note(reps)}"


def report_rss(
    args: argparse.Namespace, sq: list[SqliteRepeat] | None, pg: list[PgRepeat] | None
) -> str:
    n = args.records
    rows = []

    def add(name: str, runs: list[Run]) -> None:
        if runs:
            v = [r.maxrss_kib / 1024 for r in runs]
            rows.append((name, f"{median(v):,.0f}", fmt_spread(v, lambda x: f"{x:,.0f}")))

    if sq:
        add(f"SQLite import, {n:,} rows", [r.imp for r in sq])
        add(f"SQLite re-import, {n:,} rows", [r.reimp for r in sq])
        add(f"SQLite import, {n // 4:,} rows (N/4)", [r.quarter for r in sq if r.quarter])
    if pg:
        add(f"PostgreSQL import, {n:,} rows", [r.imp for r in pg])
        add(f"PostgreSQL re-import, {n:,} rows", [r.reimp for r in pg])
        add(f"PostgreSQL import, {n // 4:,} rows (N/4)", [r.quarter for r in pg if r.quarter])
    return render_table(
        ["peak RSS of the import process", "MiB (median)", "min – max"], rows, [False, True, True]
    )


def report_profile(p: ProfileResult, top: int = 25, cum_top: int = 20) -> str:
    lines = [
        f"  one in-process SQLite import of {p.rows:,} rows ({p.inserted:,} inserted) under "
        f"cProfile: {p.wall:.1f}s wall (the profiler itself slows Python code down); "
        f"src {p.code}",
        "  ImportResult.seconds under the profiler:      "
        + ", ".join(f"{k} {v:.2f}s" for k, v in p.seconds.items())
        + (f"  (sum {sum(p.seconds.values()):.2f}s)" if p.seconds else ""),
        "  ImportResult.seconds without the profiler:   "
        + ", ".join(f"{k} {v:.2f}s" for k, v in p.plain_seconds.items())
        + (f"  (sum {sum(p.plain_seconds.values()):.2f}s)" if p.plain_seconds else "")
        + f"; import_services {p.plain_wall:.2f}s wall",
        "",
        "  per thread: busy = sum of tottime outside waits; wait = blocked on a lock or an idle",
        "  worker's queue (time the thread spent waiting for the other one, not CPU):",
    ]
    for name, busy, waits, tops in p.per_thread:
        lines.append(
            f"    {name:<20} busy {busy:6.2f}s  wait {waits:6.2f}s   top: "
            + "; ".join(f"{name_} {t:.2f}s" for t, name_ in tops[:3])
        )
    items = sorted(p.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    total_tt = sum(v[2] for v in p.stats.values())
    rows = []
    for key, (cc, nc, tt, ct, _) in items:
        calls = str(nc) if cc == nc else f"{nc}/{cc}"
        name = _func_name(key)
        rows.append(
            (
                f"{tt:.2f}",
                f"{100 * tt / total_tt:.1f}%",
                f"{ct:.2f}",
                calls,
                name + ("  [wait]" if is_wait(name) else ""),
            )
        )
    lines += [
        "",
        f"  top {top} functions by tottime, all threads merged (total tottime {total_tt:.1f}s):",
        render_table(
            ["tottime", "share", "cumtime", "calls", "function"],
            rows,
            [True, True, True, True, False],
        ),
    ]
    own = [
        (key, v)
        for key, v in p.stats.items()
        if _func_name(key).startswith("dangliang/") and not _func_name(key).startswith("<")
    ]
    own.sort(key=lambda kv: kv[1][3], reverse=True)
    lines += [
        "",
        "  dangliang's own functions by cumtime (time inside them and everything they call;",
        "  nested, so the figures overlap — read it as a call tree flattened):",
        render_table(
            ["cumtime", "tottime", "calls", "function"],
            [
                (f"{v[3]:.2f}", f"{v[2]:.2f}", str(v[1]), _func_name(key))
                for key, v in own[:cum_top]
            ],
            [True, True, True, False],
        ),
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgres", "both", "none"],
        default="sqlite",
        help="none: only the --profile run",
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dangliang-bench"
    )
    parser.add_argument("--profile", action="store_true", help="also profile one SQLite import")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"default {DEFAULT_PG_URL}")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=100_000,
        help="passed to `dangliang import` and used by the baselines",
    )
    parser.add_argument(
        "--no-quarter",
        action="store_true",
        help="skip the N/4 import that checks RSS does not grow with N",
    )
    parser.add_argument(
        "--baseline-cache-mib",
        type=int,
        default=0,
        help="PRAGMA cache_size for the SQLite baselines (0: SQLite's default)",
    )
    args = parser.parse_args()
    if args.records < 4 or args.repeat < 1:
        parser.error("--records must be ≥ 4 and --repeat ≥ 1")

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    fingerprint = source_fingerprint()
    info = machine_info({"os": platform.platform()})
    pg_ver = pg_version(args.pg_url) if args.backend in ("postgres", "both") else None
    if pg_ver:
        info["postgresql"] = pg_ver
    info["code"] = f"{git_describe()} (src fingerprint {fingerprint})"
    info["started"] = datetime.now().astimezone().isoformat(timespec="seconds")
    info["command"] = " ".join(["python", *sys.argv])
    started = time.perf_counter()

    county = ensure_county(workdir, args.records)
    sq = run_sqlite(args, county, workdir) if args.backend in ("sqlite", "both") else None
    pg = None
    pg_skipped = ""
    if args.backend in ("postgres", "both"):
        if pg_ver:
            pg = run_postgres(args, county)
        else:
            pg_skipped = f"PostgreSQL skipped: cannot connect to {args.pg_url}"
    prof = run_profile(args, county, workdir) if args.profile else None
    fingerprint_after = source_fingerprint()

    print()
    print(
        f"dangliang import benchmark — {args.records:,} service records, {args.repeat} repeat(s), "
        f"batch size {args.batch_size:,}"
    )
    for k, v in info.items():
        print(f"  {k:<13} {v}")
    print(f"  total time    {time.perf_counter() - started:.0f}s")
    if fingerprint_after != fingerprint:
        print(
            f"  !! the source under src/ changed during the run ({fingerprint} → "
            f"{fingerprint_after}; {', '.join(changed_files(fingerprint, fingerprint_after))}): "
            "repeats may have measured different code"
        )
    if sq:
        print("\n" + report_sqlite(args, sq))
    if pg:
        print("\n" + report_postgres(args, pg))
    if pg_skipped:
        print("\n  " + pg_skipped)
    if sq or pg:
        print("\n" + report_rss(args, sq, pg))
    if prof:
        print("\n" + report_profile(prof))

    print()
    if sq:
        rate = median([args.records / r.imp.wall for r in sq])
        ratio = median(
            [(args.records / r.imp.wall) / (r.rows / (r.csv_read + r.em_insert)) for r in sq]
        )
        raw = median([(args.records / r.imp.wall) / (r.rows / r.raw_insert) for r in sq])
        rss = median([r.imp.maxrss_kib / 1024 for r in sq])
        q = [r.quarter.maxrss_kib / 1024 for r in sq if r.quarter]
        target = "meets" if rate >= 100_000 else "below"
        print(
            f"SUMMARY sqlite:   {rate:,.0f} rows/s import ({target} the 100,000 rows/s target), "
            f"re-import {median([args.records / r.reimp.wall for r in sq]):,.0f} rows/s; "
            f"{ratio:.2f}× csv+executemany, {raw:.2f}× raw event-table insert; "
            f"peak RSS {rss:,.0f} MiB" + (f" (N/4: {median(q):,.0f} MiB)" if q else "")
        )
    if pg:
        rate = median([args.records / r.imp.wall for r in pg])
        ratio = median([(args.records / r.imp.wall) / (r.rows / (r.csv_read + r.copy)) for r in pg])
        pq = [r.quarter.maxrss_kib / 1024 for r in pg if r.quarter]
        print(
            f"SUMMARY postgres: {rate:,.0f} rows/s import, re-import "
            f"{median([args.records / r.reimp.wall for r in pg]):,.0f} rows/s; "
            f"{ratio:.2f}× csv+COPY; "
            f"peak RSS {median([r.imp.maxrss_kib / 1024 for r in pg]):,.0f} MiB"
            + (f" (N/4: {median(pq):,.0f} MiB)" if pq else "")
        )
    elif pg_skipped:
        print(f"SUMMARY postgres: {pg_skipped}")


if __name__ == "__main__":
    main()
