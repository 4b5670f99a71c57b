#!/usr/bin/env python
"""Hash-chain benchmark: building `audit_chain` and verifying it, against a read-and-hash floor.

    . .venv/bin/activate
    python benchmarks/chain_benchmark.py --records 1000000 --repeat 3 --backend both

Options: `--records N` (default 1,000,000 service records, seed 42), `--repeat R` (default 3;
medians, min – max shown), `--backend sqlite|postgres|both` (default sqlite), `--workdir DIR`
(default `$TMPDIR/dangliang-bench-chain`: the county is generated there and reused; the SQLite
file is kept for the next run unless `--fresh`), `--pg-url URL` (default
`postgresql://postgres@127.0.0.1:5432/test`; a schema `bench_chain_<N>` kept for reuse unless
`--fresh`), `--db URL` (measure an already loaded database instead; nothing is set up).

Setup, not timed: `dangliang generate`, `institutions load`, `staff load`, `catalog load` and
`import` through the CLI. Per repeat, on the whole log (events = the log's head):

- *build*: the chain emptied and extended over the whole log in one transaction (`chain.extend`,
  what sealing does batch by batch as events are appended), events/s;
- *verify*: `verify(conn, log)` of the intact chain, events/s;
- *floor*: the same pages read with the same SQL (`chain.event_pages`) and one plain
  `hashlib.sha256` per row over its fields concatenated — no encoding, no chaining, no writes.
  The ratio build (or verify) / floor says what the chain adds to reading and hashing the log.

Check: the verify is OK and its head equals `chain_head`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

# `benchmarks/` is first on sys.path when this runs as `python benchmarks/chain_benchmark.py`
from common import (
    dangliang_command,
    fmt_rate,
    fmt_spread,
    git_describe,
    log,
    machine_info,
    median,
    pg_drop_schema,
    pg_version,
    remove_sqlite,
    render_table,
)

from dangliang.application import Dangliang, bootstrap
from dangliang.ledger import chain, chain_verification
from dangliang.settings import Settings

SEED = 42
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def run_cli(*args: str) -> None:
    import subprocess

    env = {**os.environ, "DANGLIANG_ACTOR": "bench"}
    env.pop("DANGLIANG_DB", None)
    subprocess.run([*dangliang_command(), *args], env=env, check=True, capture_output=True)


def prepare(url: str, county: Path, records: int) -> None:
    """Load the county unless the database already holds its service records."""
    app = bootstrap(Settings(url))
    try:
        if app.log.head() >= records:
            log(f"reusing {url} ({app.log.head():,} events)")
            return
    finally:
        app.close()
    if not (county / "services.csv").exists():
        log(f"generating {records:,} records into {county} …")
        run_cli("generate", "--out", str(county), "--records", str(records), "--seed", str(SEED))
    log(f"loading the county into {url} …")
    for args in (
        ("institutions", "load", "institutions.csv"),
        ("staff", "load", "staff.csv"),
        ("catalog", "load", "catalogue.csv"),
        ("import", "services.csv"),
    ):
        run_cli(*args[:-1], str(county / args[-1]), "--db", url)


def build(app: Dangliang) -> float:
    with app.write_engine.begin() as conn:
        tables = chain.tables_of(conn, app.log.events_table)
        conn.exec_driver_sql(f"DELETE FROM {tables.chain}")
        started = time.perf_counter()
        chain.extend(tables, (0, chain.GENESIS_HEX), chain.last_event_id(tables))
        return time.perf_counter() - started


def verify(app: Dangliang) -> tuple[float, chain_verification.ChainReport]:
    with app.engine.connect() as conn:
        started = time.perf_counter()
        report = chain_verification.verify(conn, app.log)
        return time.perf_counter() - started, report


def floor(app: Dangliang, head: int) -> float:
    sha256 = hashlib.sha256
    with app.engine.connect() as conn:
        started = time.perf_counter()
        tables = chain.tables_of(conn, app.log.events_table)
        for rows in chain.event_pages(tables, 0, head, 20_000):
            for nid, originator, version, topic, state in rows:
                sha256(b"%d%s%d%s%s" % (nid, originator.encode(), version, topic.encode(), state))
        return time.perf_counter() - started


def measure(url: str, repeat: int) -> list[list[str]]:
    app = bootstrap(Settings(url))
    try:
        head = app.log.head()
        times: dict[str, list[float]] = {"build": [], "verify": [], "floor": []}
        for i in range(repeat):
            times["build"].append(build(app))
            seconds, report = verify(app)
            with app.engine.connect() as conn:
                ok = report.ok and report.head == chain.chain_head(conn)
            times["verify"].append(seconds)
            times["floor"].append(floor(app, head))
            log(
                f"repeat {i + 1}: build {times['build'][-1]:.2f}s, verify {seconds:.2f}s, "
                f"floor {times['floor'][-1]:.2f}s, check {'OK' if ok else '!! FAILED'}"
            )
    finally:
        app.close()
    floor_rate = head / median(times["floor"])
    rows = []
    for name, label in (
        ("build", "chain build (extend)"),
        ("verify", "verify"),
        ("floor", "floor: same SQL + sha256 per row"),
    ):
        rates = [head / t for t in times[name]]
        ratio = median(rates) / floor_rate
        rows.append(
            [
                label,
                f"{head:,}",
                fmt_rate(median(rates)),
                fmt_spread(rates, fmt_rate),
                f"{ratio:.2f}",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dangliang-bench-chain"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--db", help="an already loaded database URL: measure it as it is")
    parser.add_argument("--fresh", action="store_true", help="load the county again")
    args = parser.parse_args()

    targets: list[tuple[str, str]] = []
    if args.db:
        targets.append(("given", args.db))
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        county = args.workdir / f"county-{args.records}"
        if args.backend in ("sqlite", "both"):
            path = args.workdir / f"chain-{args.records}.db"
            if args.fresh:
                remove_sqlite(path)
            url = f"sqlite:///{path}"
            prepare(url, county, args.records)
            targets.append(("SQLite", url))
        if args.backend in ("postgres", "both") and pg_version(args.pg_url):
            schema = f"bench_chain_{args.records}"
            if args.fresh:
                pg_drop_schema(args.pg_url, schema)
            url = f"{args.pg_url}?schema={schema}"
            prepare(url, county, args.records)
            targets.append(("PostgreSQL", url))

    print("Hash-chain benchmark (events/s; ratio = rate / the floor's rate)")
    for key, value in {**machine_info(), "code": git_describe()}.items():
        print(f"  {key}: {value}")
    for name, url in targets:
        log(f"measuring {name} …")
        rows = measure(url, args.repeat)
        print(f"\n{name}, median of {args.repeat}:")
        print(render_table(["", "events", "events/s", "min – max", "ratio"], rows))


if __name__ == "__main__":
    main()
