#!/usr/bin/env python
"""Province benchmark: a simulated province of N counties, on plain PostgreSQL and on Citus.

    . .venv/bin/activate
    python benchmarks/province_benchmark.py                        # 10 counties × 1,000,000
    python benchmarks/province_benchmark.py --counties 4 --records 100000 --steps 2,4
    python benchmarks/province_benchmark.py --citus-url postgresql://postgres@coordinator:5432/postgres

Each county is one schema of one database (`dl_province_bench` on the plain server; the Citus
coordinator's database, where each schema is created as a *distributed schema* and placed whole
on a worker). Counties are added in steps (default 2, 4, 6, 8, 10): each step's new counties are
built in parallel (`--jobs`, default 2: the machine's cores), each by its own application —
reference data, `import` of the county's service records and its read models caught up (the
*import* time), the Zhuji bundle, the year's inputs, and the year-end settlement run, computed
and approved (the *settle* time). Then `ANALYZE` (untimed, as autovacuum would), and the
province report (`Province.report`: one query through the server) runs `--repeat` times over
all counties built so far.

Printed per backend and step: the counties' records, the load rate (the step's records ÷ its
summed import seconds ÷ the imports running at once), each county's import and settlement
times (median), the report's time (median, min – max) — and, as the
baseline in the same run, a raw `COPY` of the same service-record rows into a plain table of
one schema (rows/s), which the load rate is set against.

The same generated county file (seed 42) is imported into every county schema; figures are
therefore equal across counties, which the report checks (every county has the same
equivalents). Setup that is not timed: `dangliang generate` once; `CREATE SCHEMA`.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

# `benchmarks/` is first on sys.path when this runs as `python benchmarks/province_benchmark.py`
from common import fmt_rate, git_describe, log, machine_info, median, pg_connect, render_table

from dangliang.application import bootstrap
from dangliang.application.province import Province
from dangliang.demo.generator import generate
from dangliang.domain.periods import Period
from dangliang.settings import Settings, parse_db_url

YEAR = 2024
TODAY = date(YEAR + 1, 1, 20)
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "dl_province_bench"
INPUTS = ("scores", "income", "pay-levels", "tasks", "force-majeure")


@dataclass
class Built:
    schema: str
    records: int
    import_s: float
    settle_s: float


def build_county(args: tuple[str, str, dict[str, str]]) -> Built:
    """One county, by its own application (runs in a worker process)."""
    base, schema, files = args
    paths = {k: Path(v) for k, v in files.items()}
    app = bootstrap(Settings(f"{base}?schema={schema}"))
    try:
        app.load_institutions(paths["institutions"], actor="bench")
        app.load_headcount(paths["headcount"], actor="bench")
        app.load_staff(paths["staff"], actor="bench")
        app.load_catalogue(paths["catalogue"], actor="bench")
        started = time.perf_counter()
        result = app.import_services(paths["services"], actor="bench", today=TODAY)
        app.catch_up()  # the read models too: the county is loaded when it can be read
        imported = time.perf_counter() - started
        app.adopt_policy("zhuji", reference="基准测试", actor="bench")
        for kind in INPUTS:
            app.load_inputs(kind, paths[kind.replace("-", "_")], actor="bench")
        started = time.perf_counter()
        run = app.run_payout(Period(YEAR), actor="bench", today=TODAY)
        app.approve_payout(run.run_id, reference="基准", actor="checker")
        settled = time.perf_counter() - started
        return Built(schema, result.rows, imported, settled)
    finally:
        app.close()


def create_schemas(base: str, schemas: list[str], citus: bool) -> None:
    with pg_connect(base, autocommit=True) as conn:
        if citus:
            conn.execute("SET citus.enable_schema_based_sharding TO on")
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{schema}"')


def drop_schemas(base: str, prefix: str) -> None:
    with pg_connect(base, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (f"{prefix}%",)
        ).fetchall()
        for (schema,) in rows:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def raw_copy_rate(base: str, services: Path, citus: bool) -> float:
    """Baseline: COPY of the service-record rows into a plain UNIQUE table of one schema."""
    schema = "dl_bench_raw"
    create_schemas(base, [schema], citus)
    with services.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))[1:]
    with pg_connect(base, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {schema}.records (institution_code text, source_id text, "
            "staff_id text, item_code text, quantity text, service_date text, patient_ref text,"
            " compliant text, PRIMARY KEY (institution_code, source_id))"
        )
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY {schema}.records FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row[:8])
        seconds = time.perf_counter() - started
    drop_schemas(base, schema)
    return len(rows) / seconds


def measure(
    base: str, label: str, files: dict[str, str], args: argparse.Namespace
) -> list[list[str]]:
    citus = label == "Citus"
    prefix = "dl_county_"
    drop_schemas(base, prefix)
    raw = raw_copy_rate(base, Path(files["services"]), citus)
    log(f"{label}: raw COPY {raw:,.0f} rows/s")
    steps = [int(s) for s in args.steps.split(",") if int(s) <= args.counties]
    built: list[Built] = []
    out: list[list[str]] = []
    for n in steps:
        new = [f"{prefix}{i:02d}" for i in range(len(built) + 1, n + 1)]
        create_schemas(base, new, citus)
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            batch = pool.map(build_county, [(base, s, files) for s in new])
        wall = time.perf_counter() - started
        built.extend(batch)
        with pg_connect(base, autocommit=True) as conn:  # as autovacuum would, untimed
            conn.execute("ANALYZE")
        records = sum(b.records for b in batch)
        province = Province(parse_db_url(base))
        try:
            times, report = [], None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                report = province.report(YEAR)
                times.append(time.perf_counter() - t0)
            placed = province.distributed()
        finally:
            province.close()
        assert report is not None
        ours = [c for c in report.counties if c.county.startswith(prefix)]
        assert len(ours) == n and len({c.equivalents for c in ours}) == 1, "counties differ"
        load_rate = records / sum(b.import_s for b in batch) * min(args.jobs, len(batch))
        log(
            f"{label} {n} counties: built {len(batch)} in {wall:.0f} s; report "
            f"{median(times) * 1000:.0f} ms; workers {sorted(set(placed.values())) or '-'}"
        )
        out.append(
            [
                label,
                str(n),
                f"{sum(b.records for b in built):,}",
                fmt_rate(load_rate),
                f"{load_rate / raw:.2f}",
                f"{statistics.median(b.import_s for b in batch):.1f}",
                f"{statistics.median(b.settle_s for b in batch):.2f}",
                f"{median(times) * 1000:.0f}",
                f"{min(times) * 1000:.0f} – {max(times) * 1000:.0f}",
            ]
        )
    if not args.keep:
        drop_schemas(base, prefix)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counties", type=int, default=10)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--steps", default="2,4,6,8,10")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--citus-url", default=os.environ.get("DANGLIANG_TEST_CITUS_URL", ""))
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "dl-province"))
    parser.add_argument("--keep", action="store_true", help="keep the county schemas")
    args = parser.parse_args()

    workdir = Path(args.workdir) / f"county-{args.records}"
    index = workdir / "files.json"
    if not index.exists():
        log(f"generating one county of {args.records:,} records in {workdir} …")
        county = generate(workdir, records=args.records, seed=42, year=YEAR)
        index.write_text(json.dumps({k: str(v) for k, v in county.files.items()}))
    files: dict[str, str] = json.loads(index.read_text())

    with pg_connect(args.pg_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    parts = args.pg_url.rsplit("/", 1)
    plain = f"{parts[0]}/{BENCH_DB}"
    rows = measure(plain, "PostgreSQL", files, args)
    if args.citus_url:
        rows += measure(args.citus_url, "Citus", files, args)
    else:
        log("no --citus-url / DANGLIANG_TEST_CITUS_URL: Citus not measured")

    print()
    for key, value in machine_info({"code": git_describe(list_files=False)}).items():
        print(f"  {key}: {value}")
    print(
        f"\nProvince of up to {args.counties} counties × {args.records:,} records, "
        f"{args.jobs} county builds at a time, report median of {args.repeat}:\n"
    )
    headers = [
        "backend",
        "counties",
        "records",
        "load rate /s",
        "vs raw COPY",
        "import s (median)",
        "settle s (median)",
        "report ms",
        "min – max",
    ]
    print(render_table(headers, rows, markdown=True))


if __name__ == "__main__":
    main()
