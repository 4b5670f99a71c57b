#!/usr/bin/env python
"""Insurance-fund benchmark (医保基金): a county-year of claims imported and settled, beside
raw-database baselines measured in the same run.

Run from the project's virtualenv:

    . .venv/bin/activate
    python benchmarks/insurance_benchmark.py --claims 2000000 --people 550000 --repeat 3 --db sqlite

Quick smoke test: `--claims 50000 --people 20000 --repeat 1`.

Options: `--claims N` (default 2,000,000 claims of one year), `--people P` (default 550,000
per-person enrolment rows), `--repeat R` (default 3: fresh databases; medians, min – max
shown), `--inner K` (default 3: each computation is timed K times on every repeat's
database, the median is over all R × K timings), `--db sqlite|postgres|both`, `--pg-url URL`
(default `postgresql://postgres@127.0.0.1:5432/postgres`; each repeat gets fresh schemas
`bench_ins_<pid>_<i>` and `…_raw` via `?schema=`, dropped afterwards), `--services N` (default:
= N claims; 0 skips it) service records imported with `import_services` in each repeat for the
comparison, `--workdir DIR` (default `$TMPDIR/dangliang-bench-insurance-fund`; the county is
generated there once per size and reused), `--keep` (keep the last SQLite databases).

The county (deterministic, seed 42): institutions, staff, catalogue and services from
`dangliang generate` (12 centres, 127 clinics); two medical communities (YGT01: C01–C06,
YGT02: C07–C12); P people (per-person enrolment, 35% employee, born 1930–2023, most
enrolled before 2024, some joining or leaving during it); N claims of 2024 (6% out of
area), written by this script; the fund year 2024 (revenue, last year's spending set so that
the year ends near balance) and both communities' scores; the built-in De Qing bundle.

Timed, per repeat, in-process (the garbage collector tuned as the CLI tunes it):
1. `import_insurance("enrolment")` and `import_insurance("claims")` (rows/s; the importer's
   own phases, validate = pass 1, write = pass 2), then the re-import of each file (all rows
   already present); beside the raw baseline: `csv.reader` + `sqlite3.executemany` of the
   same rows, as strings, into a bare table with the same UNIQUE key (WAL,
   `synchronous=NORMAL`, a commit per 100,000 rows) — on PostgreSQL `csv.reader` + psycopg
   `COPY` into the same bare table; and `import_services` of `--services` rows of the
   generated county into a fresh database (institutions, staff, catalogue loaded first).
2. the catch-up of the projections after the imports: what `app.catch_up()` does (registry,
   inputs, equivalents, hash chain, insurance), one projection at a time with the same calls
   in its order, so that each is timed; `app.catch_up()` then finds nothing left to do.
3. `compute_insurance(Period(2024))` at the head, a few events back and at a position in the
   middle of the claims import (N/2 claims recorded since: the as-of path reads their
   deltas); beside it the raw read: `SELECT community, month, out_of_area, SUM(fund) … GROUP
   BY` over the bare claims table, fetched into Python. The two halves of a settlement
   (gathering the inputs; the rule steps) are timed apart. `run_insurance(Period(2024))`
   (a recorded run) once per repeat.
4. `insurance_what_if(Period(2024), ["deqing.growth_rate=0.08"])` (target < 1 s).
On PostgreSQL the bare tables are `ANALYZE`d after the COPY; the app's tables get whatever
the server's autovacuum gives them (nothing, where autovacuum is off).
Checks: every import stored all its rows, every re-import found all present, the settlement's
spending equals the generated claims to the fen, the as-of results equal the head's where no
claim changed, and the what-if raises the budget.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

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

from dangliang.application import Dangliang, bootstrap
from dangliang.application.bootstrap import tune_garbage_collector
from dangliang.calculation import fund as calc
from dangliang.domain.periods import Period
from dangliang.projections import facts_queries as inp
from dangliang.projections.tracking import catch_up
from dangliang.settings import Settings

SEED = 42
YEAR = 2024
TODAY = date(YEAR + 1, 3, 1)
ACTOR = "bench"
WHAT_IF = ["deqing.growth_rate=0.08"]
TARGET_S = 1.0
BATCH = 100_000
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
COMMUNITIES = {
    "YGT01": ("县人民医院医共体", "H001", "县人民医院", [f"C{i:02d}" for i in range(1, 7)]),
    "YGT02": ("县中医院医共体", "H002", "县中医院", [f"C{i:02d}" for i in range(7, 13)]),
}
HOMES = ["武康街道", "舞阳街道", "阜溪街道", "下渚湖街道", "乾元镇", "新市镇", "洛舍镇", "钟管镇"]
ENROLMENT_HEADER = "insured_ref,insurance_type,birth_date,home,community_code,from_month,to_month"
CLAIMS_HEADER = (
    "claim_id,insured_ref,community_code,institution_code,out_of_area,settled_on,fund_amount"
)


# --------------------------------------------------------------------------------------------
# the county


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def generate(workdir: Path, claims: int, people: int, services: int) -> tuple[Path, dict[str, Any]]:
    """The county's files (reused when the same sizes were generated before); returns the
    folder and its meta (the total of the claims, in fen, for the checks)."""
    county = workdir / f"county-{claims}-{people}-{services}"
    meta_file = county / "bench-meta.json"
    if meta_file.exists():
        log(f"reusing county {county}")
        return county, json.loads(meta_file.read_text())
    county.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log(f"generating the reference data and {services:,} service records (dangliang generate)")
    subprocess.run(
        [
            *dangliang_command(),
            "generate",
            "--out",
            str(county),
            "--records",
            str(services),
            "--seed",
            str(SEED),
            "--year",
            str(YEAR),
        ],
        check=True,
        capture_output=True,
    )
    rng = random.Random(SEED)
    log(f"writing {people:,} enrolment rows and {claims:,} claims")
    with (county / "communities.csv").open("w", encoding="utf-8") as f:
        f.write("community_code,name,lead_hospital_code,lead_hospital_name,members\n")
        for code, (name, lead, lead_name, members) in COMMUNITIES.items():
            f.write(f"{code},{name},{lead},{lead_name},{';'.join(members)}\n")
    home_of = bytearray(people)  # 0 = YGT01, 1 = YGT02
    with (county / "enrolment.csv").open("w", encoding="utf-8", newline="") as f:
        f.write(ENROLMENT_HEADER + "\n")
        lines = []
        for i in range(people):
            second = rng.random() < 0.45
            home_of[i] = second
            community = "YGT02" if second else "YGT01"
            home = HOMES[rng.randrange(4) + (4 if second else 0)]
            kind = "employee" if rng.random() < 0.35 else "resident"
            born_year = rng.randint(1930, 2023)
            born = f"{born_year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            u = rng.random()
            start_year = rng.randint(2012, YEAR - 1)
            if u < 0.85 and start_year > born_year:  # enrolled before the year
                start = f"{start_year}-{rng.randint(1, 12):02d}"
            else:  # joined in 2024 (January: the residents' yearly enrolment; born before)
                start = f"{YEAR}-{1 if u < 0.95 else rng.randint(2, 12):02d}"
            end = ""
            if rng.random() < 0.04:  # left during the year (not before joining)
                first = int(start[5:]) if start.startswith(str(YEAR)) else 1
                end = f"{YEAR}-{rng.randint(first, 12):02d}"
            lines.append(f"P{i:07d},{kind},{born},{home},{community},{start},{end}\n")
            if len(lines) >= 50_000:
                f.writelines(lines)
                lines.clear()
        f.writelines(lines)
    total = 0
    with (county / "claims.csv").open("w", encoding="utf-8", newline="") as f:
        f.write(CLAIMS_HEADER + "\n")
        lines = []
        places = {
            0: ["H001", *COMMUNITIES["YGT01"][3]],
            1: ["H002", *COMMUNITIES["YGT02"][3]],
        }
        for i in range(claims):
            person = rng.randrange(people)
            side = home_of[person]
            if rng.random() < 0.06:
                institution, out = f"H33{rng.randrange(100_000):07d}", "yes"
                fen = int(rng.lognormvariate(9.5, 1.0))  # inpatient elsewhere: ~130 yuan+
            else:
                choices = places[side]
                institution = choices[0] if rng.random() < 0.4 else rng.choice(choices)
                out = "" if rng.random() < 0.5 else "no"
                fen = int(rng.lognormvariate(8.6, 1.3))
            total += fen
            settled = f"{YEAR}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            community = "YGT02" if side else "YGT01"
            lines.append(
                f"JS{YEAR}{i:010d},P{person:07d},{community},{institution},{out},{settled},"
                f"{yuan(fen)}\n"
            )
            if len(lines) >= 50_000:
                f.writelines(lines)
                lines.clear()
        f.writelines(lines)
    prior = total * 100 // 104  # with the 5% growth rate the year ends with a small surplus
    revenue = total * 110 // 100
    with (county / "fund_years.csv").open("w", encoding="utf-8") as f:
        f.write("year,revenue,prior_spending,reference\n")
        f.write(f"{YEAR},{yuan(revenue)},{yuan(prior)},医保〔{YEAR}〕1号（基准测试）\n")
    with (county / "community_scores.csv").open("w", encoding="utf-8") as f:
        f.write("community_code,year,score,reference\n")
        f.write(f"YGT01,{YEAR},88.5,考核〔{YEAR + 1}〕2号\nYGT02,{YEAR},76,考核〔{YEAR + 1}〕2号\n")
    meta = {"claims": claims, "people": people, "services": services, "claims_fen": total}
    meta_file.write_text(json.dumps(meta))
    log(f"county written in {time.perf_counter() - started:.1f} s")
    return county, meta


# --------------------------------------------------------------------------------------------
# databases


class Target:
    """A fresh database for one repeat (the app's) and one for the raw baseline."""

    def __init__(self, args: argparse.Namespace, backend: str, tag: str):
        self.backend = backend
        self.args = args
        if backend == "sqlite":
            self.path = args.workdir / f"bench-ins-{tag}.db"
            self.raw_path = args.workdir / f"bench-ins-{tag}-raw.db"
            remove_sqlite(self.path)
            remove_sqlite(self.raw_path)
            self.url = f"sqlite:///{self.path}"
        else:
            self.schema = f"bench_ins_{os.getpid()}_{tag}"
            pg_drop_schema(args.pg_url, self.schema)
            pg_drop_schema(args.pg_url, self.schema + "_raw")
            self.url = f"{args.pg_url}?schema={self.schema}"

    def app(self) -> Dangliang:
        return bootstrap(Settings(self.url))

    def raw(self) -> Any:
        """A DB-API connection to the baseline's database / schema (autocommit off)."""
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.raw_path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        with pg_connect(self.args.pg_url, autocommit=True) as c:
            c.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}_raw"')
        return pg_connect(self.args.pg_url, schema=self.schema + "_raw")

    def drop(self, *, keep: bool = False) -> None:
        if self.backend == "sqlite":
            if not keep:
                remove_sqlite(self.path)
                remove_sqlite(self.raw_path)
        else:
            pg_drop_schema(self.args.pg_url, self.schema)
            pg_drop_schema(self.args.pg_url, self.schema + "_raw")


RAW_TABLES = {
    "enrolment": (
        "CREATE TABLE enrolment (insured_ref TEXT, insurance_type TEXT, birth_date TEXT, "
        "home TEXT, community_code TEXT, from_month TEXT, to_month TEXT, "
        "UNIQUE (insured_ref, from_month))"
    ),
    "claims": (
        "CREATE TABLE claims (claim_id TEXT, insured_ref TEXT, community_code TEXT, "
        "institution_code TEXT, out_of_area TEXT, settled_on TEXT, fund_amount NUMERIC(14, 2), "
        "UNIQUE (claim_id))"
    ),
}
CATCH_UP = "app.catch_up() after the imports"
SERVICES = "import_services (service records, fresh database)"
RAW_NAME = "raw GROUP BY over the bare claims table"
RAW_SUM = (
    "SELECT community_code, substr(settled_on, 1, 7) AS month, out_of_area, SUM(fund_amount) "
    "FROM claims WHERE settled_on BETWEEN '{y}-01-01' AND '{y}-12-31' "
    "GROUP BY community_code, substr(settled_on, 1, 7), out_of_area"
)


def raw_load(target: Target, kind: str, path: Path) -> tuple[float, int]:
    """CSV read + insert of every row into a bare table with the same UNIQUE key: SQLite
    `executemany`, PostgreSQL `COPY`; a commit per BATCH rows. Returns (seconds, rows)."""
    conn = target.raw()
    columns = (ENROLMENT_HEADER if kind == "enrolment" else CLAIMS_HEADER).split(",")
    marks = ",".join("?" * len(columns))
    rows = 0
    try:
        if target.backend == "sqlite":
            conn.execute(RAW_TABLES[kind])
        else:
            conn.execute(RAW_TABLES[kind])
            conn.commit()
        started = time.perf_counter()
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            while True:
                batch = [r for _, r in zip(range(BATCH), reader, strict=False)]
                if not batch:
                    break
                rows += len(batch)
                if target.backend == "sqlite":
                    conn.execute("BEGIN")
                    conn.executemany(f"INSERT INTO {kind} VALUES ({marks})", batch)
                    conn.execute("COMMIT")
                else:
                    with (
                        conn.cursor() as cur,
                        cur.copy(f"COPY {kind} ({','.join(columns)}) FROM STDIN") as copy,
                    ):
                        for r in batch:
                            copy.write_row([v or None for v in r])
                    conn.commit()
        seconds = time.perf_counter() - started
        if target.backend == "postgres":
            conn.execute("ANALYZE claims" if kind == "claims" else "ANALYZE enrolment")
            conn.commit()
        return seconds, rows
    finally:
        conn.close()


def raw_sum(target: Target) -> tuple[float, int]:
    """The raw read a settlement needs, over the bare claims table: (seconds, fen)."""
    conn = target.raw()
    try:
        started = time.perf_counter()
        rows = conn.execute(RAW_SUM.format(y=YEAR)).fetchall()
        seconds = time.perf_counter() - started
        if target.backend == "postgres":
            conn.rollback()
        return seconds, sum(round(Decimal(str(r[3])) * 100) for r in rows)
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# the measurements


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def load1() -> float:
    return os.getloadavg()[0]


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


Checks = dict[str, list[str]]  # check → its result in each repeat


class Figures:
    """name → list of (seconds, rows or None) over the repeats, in insertion order."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}
        self.rows: dict[str, int] = {}
        self.phases: dict[str, dict[str, list[float]]] = {}
        self.loads: dict[str, list[float]] = {}
        self.ratios: dict[str, list[float]] = {}
        self.catch_up: dict[str, list[float]] = {}  # the catch-up, each projection in turn

    def add(self, name: str, seconds: float, rows: int | None = None, group: str = "") -> None:
        (self.catch_up if group else self.seconds).setdefault(name, []).append(seconds)
        if rows is not None:
            self.rows[name] = rows

    def rate(self, name: str) -> list[float]:
        return [self.rows[name] / s for s in self.seconds.get(name, [])]

    def ratio(self, name: str, value: float) -> None:
        self.ratios.setdefault(name, []).append(value)


def note(checks: Checks, backend: str, name: str, ok: bool, detail: Any = "") -> None:
    """One check of one repeat: OK, or MISMATCH with what was found."""
    checks.setdefault(f"{backend}: {name}", []).append("OK" if ok else f"MISMATCH {detail}")


def import_file(
    app: Dangliang,
    kind: str,
    path: Path,
    figures: Figures,
    name: str,
    *,
    expect_new: bool,
    checks: Checks,
    backend: str,
) -> int:
    s, result = timed(lambda: app.import_insurance(kind, path, actor=ACTOR, today=TODAY))
    figures.add(name, s, result.rows)
    figures.loads.setdefault(name, []).append(load1())
    for phase, secs in result.seconds.items():
        figures.phases.setdefault(name, {}).setdefault(phase, []).append(secs)
    stored = result.inserted if expect_new else result.already_present
    what = "stored every row" if expect_new else "found every row already present"
    note(checks, backend, f"{name}: {what}", stored == result.rows, f"{stored} of {result.rows}")
    log(
        f"  {name}: {result.rows:,} rows in {s:.1f} s = {result.rows / s:,.0f} rows/s "
        f"({', '.join(f'{k} {v:.1f} s' for k, v in result.seconds.items())}); "
        f"{result.inserted:,} new, {result.already_present:,} present; load {load1():.2f}"
    )
    return result.rows


def reference(app: Dangliang, county: Path) -> None:
    app.load_institutions(county / "institutions.csv", actor=ACTOR)
    for kind, name in (
        ("communities", "communities.csv"),
        ("fund_years", "fund_years.csv"),
        ("community_scores", "community_scores.csv"),
    ):
        app.import_insurance(kind, county / name, actor=ACTOR, today=TODAY)
    app.adopt_policy("deqing_insurance", reference="基准测试", actor=ACTOR, scheme="insurance")


def services_import(
    args: argparse.Namespace, backend: str, tag: str, county: Path, figures: Figures
) -> float:
    target = Target(args, backend, f"{tag}_svc")
    app = target.app()
    try:
        app.load_institutions(county / "institutions.csv", actor=ACTOR)
        app.load_staff(county / "staff.csv", actor=ACTOR)
        app.load_catalogue(county / "catalogue.csv", actor=ACTOR)
        s, result = timed(
            lambda: app.import_services(county / "services.csv", actor=ACTOR, today=TODAY)
        )
        assert result.inserted == result.rows == args.services, result.summary()
        for phase, secs in result.seconds.items():
            figures.phases.setdefault(SERVICES, {}).setdefault(phase, []).append(secs)
        figures.loads.setdefault(SERVICES, []).append(load1())
        log(
            f"  import_services: {result.rows:,} rows in {s:.1f} s = {result.rows / s:,.0f} "
            f"rows/s ({', '.join(f'{k} {v:.1f} s' for k, v in result.seconds.items())}); "
            f"load {load1():.2f}"
        )
        return s
    finally:
        app.close()
        target.drop()


def repeat(
    args: argparse.Namespace,
    backend: str,
    i: int,
    county: Path,
    meta: dict[str, Any],
    figures: Figures,
    checks: Checks,
) -> None:
    tag = f"{i}"
    target = Target(args, backend, tag)
    app = target.app()
    try:
        reference(app, county)
        log(f"{backend} repeat {i + 1}: reference data loaded; importing")
        enrolment, claims_csv = county / "enrolment.csv", county / "claims.csv"

        def load(kind: str, path: Path, name: str, *, new: bool) -> int:
            return import_file(
                app, kind, path, figures, name, expect_new=new, checks=checks, backend=backend
            )

        people = load("enrolment", enrolment, "import enrolment", new=True)
        before_claims = app.log.head()
        claims = load("claims", claims_csv, "import claims", new=True)
        load("claims", claims_csv, "re-import claims", new=False)
        load("enrolment", enrolment, "re-import enrolment", new=False)
        # app.catch_up(), one projection at a time (the same calls, in its order), so that
        # the time of each is known; app.catch_up() then finds nothing left to do.
        head = app.log.head()
        parts = []
        for projection in app.projections():
            started = time.perf_counter()
            catch_up(app.write_engine, app.log, projection, until=head)
            s = time.perf_counter() - started
            figures.add(f"  {projection.name}", s, head, group="catch-up")
            parts.append(f"{projection.name} {s:.1f} s")
        s = sum(figures.catch_up[k][-1] for k in figures.catch_up if k.startswith("  "))
        figures.add(CATCH_UP, s, head, group="catch-up")
        note(checks, backend, "app.catch_up() after it: at the head", app.catch_up() == head)
        log(f"  catch-up of {head:,} events: {s:.1f} s ({head / s:,.0f} events/s): {parts}")

        s_raw_e, rows_e = raw_load(target, "enrolment", county / "enrolment.csv")
        s_raw_c, rows_c = raw_load(target, "claims", county / "claims.csv")
        raw_how = "executemany" if backend == "sqlite" else "COPY"
        figures.add(f"raw {raw_how}, enrolment (read + insert)", s_raw_e, rows_e)
        figures.add(f"raw {raw_how}, claims (read + insert)", s_raw_c, rows_c)
        figures.ratio(
            "import claims / raw claims",
            (claims / figures.seconds["import claims"][-1]) / (rows_c / s_raw_c),
        )
        figures.ratio(
            "import enrolment / raw enrolment",
            (people / figures.seconds["import enrolment"][-1]) / (rows_e / s_raw_e),
        )
        log(
            f"  raw {raw_how}: enrolment {rows_e / s_raw_e:,.0f} rows/s, claims "
            f"{rows_c / s_raw_c:,.0f} rows/s"
        )
        if args.services:
            s_svc = services_import(args, backend, tag, county, figures)
            figures.add(SERVICES, s_svc, args.services)
            figures.ratio(
                "import claims / import_services",
                (claims / figures.seconds["import claims"][-1]) / (args.services / s_svc),
            )

        # ---- computations ----------------------------------------------------------------
        period = Period(YEAR)
        mid = before_claims + claims // 2
        few_back = head - 2  # before the two re-imports' records: no claim changed since
        t = app.equivalents_projection().t
        head_result = None
        for _ in range(args.inner):
            s, fen = raw_sum(target)
            figures.add(RAW_NAME, s)
            s, at_head = timed(lambda: app.compute_insurance(period))
            figures.add("settlement at the head", s)
            figures.ratio(
                "settlement at head / raw GROUP BY",
                s / figures.seconds[RAW_NAME][-1],
            )
            s, back = timed(lambda: app.compute_insurance(period, position=few_back))
            figures.add("settlement as of 2 events back", s)
            s, at_mid = timed(lambda: app.compute_insurance(period, position=mid))
            figures.add(f"settlement as of mid-import ({claims - claims // 2:,} claims since)", s)
            figures.ratio(
                "settlement mid-import / raw GROUP BY",
                s / figures.seconds[RAW_NAME][-1],
            )
            with app.engine.connect() as conn:
                started = time.perf_counter()
                policy = inp.policy_at(conn, head, scheme=calc.SCHEME)
                fund = calc.gather(conn, t, YEAR, head)
                figures.add("  gather the inputs (at the head)", time.perf_counter() - started)
            started = time.perf_counter()
            calc.run(period, head, policy, fund)
            figures.add("  rule steps (De Qing, a year)", time.perf_counter() - started)
            s, diff = timed(lambda: app.insurance_what_if(period, WHAT_IF))
            figures.add("what-if deqing.growth_rate=0.08", s)
            figures.ratio(
                "what-if / raw GROUP BY",
                s / figures.seconds[RAW_NAME][-1],
            )
            head_result = at_head
        assert head_result is not None
        spent = head_result.result.figures["spending"]
        total = meta["claims_fen"]
        note(checks, backend, "settlement's spending = the claims generated", spent == total, spent)
        note(checks, backend, "raw GROUP BY total = the claims generated", fen == total, fen)
        same = back.result.as_json() == at_head.result.as_json()
        note(checks, backend, "settlement 2 events back = at the head", same)
        mid_spent = at_mid.result.figures["spending"]
        note(checks, backend, "mid-import: 0 < spending < the year's", 0 < mid_spent < spent)
        budget = diff["fund"]["budget"]
        higher = Decimal(budget["scenario"]) > Decimal(budget["baseline"])
        note(checks, backend, "what-if raises the budget", higher, budget)
        s, run = timed(lambda: app.run_insurance(period, actor=ACTOR, today=TODAY))
        figures.add("run_insurance 2024 (recorded run)", s)
        log(
            f"  settlement {figures.seconds['settlement at the head'][-1] * 1000:.0f} ms, "
            f"what-if {figures.seconds['what-if deqing.growth_rate=0.08'][-1] * 1000:.0f} ms, "
            f"raw GROUP BY {figures.seconds[RAW_NAME][-1] * 1000:.0f} ms, "
            f"run {s * 1000:.0f} ms ({run.run_id}); load {load1():.2f}"
        )
    finally:
        app.close()
        target.drop(keep=args.keep and i == args.repeat - 1)


def report(backend: str, figures: Figures, args: argparse.Namespace) -> str:
    out = []
    rate_rows = []
    for name in figures.seconds:
        if name not in figures.rows or name.startswith("catch-up"):
            continue
        rates = figures.rate(name)
        phases = figures.phases.get(name, {})
        rate_rows.append(
            [
                name,
                f"{figures.rows[name]:,}",
                fmt_rate(median(rates)),
                fmt_spread(rates, fmt_rate),
                f"{median(figures.seconds[name]):.1f}",
                ", ".join(f"{k} {median(v):.1f} s" for k, v in phases.items()),
                f"{median(figures.loads[name]):.2f}" if name in figures.loads else "",
            ]
        )
    out.append(f"### {backend}: imports (medians of {args.repeat})")
    out.append("")
    out.append(
        render_table(
            ["import", "rows", "rows/s", "min – max", "seconds", "phases", "load 1-min"],
            rate_rows,
            markdown=True,
        )
    )
    out.append("")
    out.append(f"### {backend}: catch-up of the projections after the imports")
    out.append("")
    order = [CATCH_UP, *(k for k in figures.catch_up if k != CATCH_UP)]
    out.append(
        render_table(
            ["projection", "events", "seconds", "min – max", "events/s"],
            [
                [
                    k,
                    f"{figures.rows[k]:,}",
                    f"{median(figures.catch_up[k]):.1f}",
                    fmt_spread(figures.catch_up[k], lambda x: f"{x:.1f}"),
                    fmt_rate(figures.rows[k] / median(figures.catch_up[k])),
                ]
                for k in order
                if k in figures.catch_up
            ],
            markdown=True,
        )
    )
    out.append("")
    comp_rows = []
    base = median(figures.seconds.get(RAW_NAME, []))
    for name, xs in figures.seconds.items():
        if name in figures.rows:
            continue
        m = median(xs)
        targeted = name.startswith("what-if")
        comp_rows.append(
            [
                name,
                f"{m * 1000:,.0f} ms",
                f"{min(xs) * 1000:,.0f} – {max(xs) * 1000:,.0f}",
                f"{m / base:.2f}×" if base == base and base else "",
                ("< 1 s: " + ("met" if m < TARGET_S else "MISSED")) if targeted else "",
            ]
        )
    out.append(
        f"### {backend}: computations (medians of {args.repeat} × {args.inner}; "
        "run_insurance: of {args.repeat})".replace("{args.repeat}", str(args.repeat))
    )
    out.append("")
    out.append(
        render_table(
            ["computation", "median", "min – max (ms)", "× raw GROUP BY", "target"],
            comp_rows,
            markdown=True,
        )
    )
    out.append("")
    out.append(f"### {backend}: ratios (within each repeat, then the median)")
    out.append("")
    out.append(
        render_table(
            ["ratio", "median", "min – max"],
            [
                [k, f"{median(v):.2f}", fmt_spread(v, lambda x: f"{x:.2f}")]
                for k, v in figures.ratios.items()
            ],
            markdown=True,
        )
    )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=2_000_000)
    parser.add_argument("--people", type=int, default=550_000)
    parser.add_argument("--services", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--inner", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "dangliang-bench-insurance-fund",
    )
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.services is None:
        args.services = args.claims
    args.workdir.mkdir(parents=True, exist_ok=True)
    tune_garbage_collector()  # as the command line does
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    uptime_before = uptime()
    log(f"start: {uptime_before}")
    county, meta = generate(args.workdir, args.claims, args.people, args.services)
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    extra = {}
    if "postgres" in backends:
        version = pg_version(args.pg_url)
        if version is None:
            backends.remove("postgres")
        else:
            extra["postgresql"] = version
    sections = []
    checks: Checks = {}
    code = git_describe()  # the code this process loaded (it is imported once, at the start)
    for backend in backends:
        figures = Figures()
        for i in range(args.repeat):
            repeat(args, backend, i, county, meta, figures, checks)
        sections.append(report(backend, figures, args))
    sizes = {p.name: p.stat().st_size for p in county.glob("*.csv")}
    print(
        f"# Insurance-fund benchmark — {args.claims:,} claims, {args.people:,} people, "
        f"{args.repeat} repeats"
    )
    print()
    for k, v in machine_info(extra).items():
        print(f"- {k}: {v}")
    print(f"- code loaded at the start: {code}")
    print(f"- code at the end (not loaded): {git_describe()}")
    print(f"- started: {started_at}; `uptime` before: {uptime_before}")
    print(f"- `uptime` after: {uptime()}")
    print(
        f"- files: claims.csv {sizes.get('claims.csv', 0) / 1e6:.0f} MB, enrolment.csv "
        f"{sizes.get('enrolment.csv', 0) / 1e6:.0f} MB, services.csv "
        f"{sizes.get('services.csv', 0) / 1e6:.0f} MB"
    )
    print(
        f"- peak RSS of this process: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    print()
    for section in sections:
        print(section)
        print()
    rows = [
        [k, f"OK ({len(v)}/{len(v)})" if all(x == "OK" for x in v) else "; ".join(v)]
        for k, v in checks.items()
    ]
    print(render_table(["check (every repeat)", "result"], rows, markdown=True))


if __name__ == "__main__":
    main()
