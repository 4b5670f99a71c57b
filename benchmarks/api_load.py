#!/usr/bin/env python
"""HTTP API load benchmark: many concurrent reads of a payout statement and of equivalents
over loopback, against a real `dangliang serve` (uvicorn) in a child process.

Run from the project's virtualenv:

    . .venv/bin/activate
    python benchmarks/api_load.py --records 100000 --repeat 3
    python benchmarks/api_load.py --db 'postgresql://postgres@127.0.0.1:5432/test?schema=bench_api'

Quick smoke test: `--records 20000 --requests 50 --repeat 1 --workers 1 --concurrency 1,16`.

Options: `--records N` (default 100,000), `--db URL` (default: a SQLite file in the workdir;
a database that already holds an approved run of 2024-03 is reused as it is, otherwise the
county is built into it), `--workdir DIR` (default `$TMPDIR/dangliang-bench-api`; the county is
generated there as `county-N` and reused; the server logs go there too), `--workers 1,2`
(uvicorn processes), `--concurrency 1,16,64` (client connections), `--requests R` and
`--seconds S` (per endpoint and setting: R requests, but none started after S seconds;
defaults 200 and 10), `--repeat K` (default 3; every figure is the median over the repeats),
`--drop` (drop the PostgreSQL schema / delete the SQLite file at the end). About 15 minutes
with the defaults on the 2-core machine.

Setup (in-process, reported, not a result): `generate --seed 42`, the reference data, the
compensation and performance-pay inputs, the services, `policy load zhuji`, a payout run of
2024-03 computed by one user and approved by another; tokens for an admin, an auditor and a
clerk of C01 (a new token each run).

Timed, per repeat, per `--workers` and `--concurrency`, from that many concurrent keep-alive
connections (httpx, asyncio, in this process), after a few warm-up requests:
- `health` — `GET /api/v1/health`: no token, no database; the floor of a request through
  uvicorn + FastAPI + the client (the HTTP baseline);
- `statement xlsx` / `statement json` — `GET /api/v1/payout-runs/2024-03%231/statement?format=…`
  as the auditor (the document is built per request: run → JSON → XLSX bytes);
- `equivalents 2024` — `GET /api/v1/equivalents?period=2024` as the admin;
- `equivalents C01 (clerk)` — the same with `institution=C01`, as the clerk of C01;
- `run summary` — `GET /api/v1/payout-runs/2024-03%231` as the auditor (the run, every line);
- `centre's statement (clerk)` — the same as the clerk of C01 (their centre's lines only).
Answers of these reads are kept per log position (`api.response_cache`): after the first
request of a batch, a request is answered from the worker's memory while the log's head stays.
Per endpoint: requests, errors (any non-2xx or transport error, by kind, warm-up included;
printed), throughput (requests / wall seconds of the batch), mean, p50, p90, p99 latency
(client side: request sent → body read). In-process baseline in the same repeat: the same work
called directly on the service in this process, one call at a time
(`service.equivalents("2024")`; the statement's `run_json` + `write_statement` + reading the
bytes), mean of 20 calls (a garbage collection every few calls is part of the cost, in the
server too); at one connection, mean / in-process is what HTTP, auth, validation and
serialisation add, at more it also holds the queueing behind the other connections. The
server logs are scanned for tracebacks, 500s and "database is locked".

The client runs on the same machine as the server and takes CPU from it (2 cores here): the
figures are what one box does with both ends, not the server alone. With `--workers` > 1 each
request on a kept-alive connection waits ~40 ms for the client's delayed ACK: uvicorn's
multi-process mode binds the socket without `IPPROTO_TCP`, so asyncio leaves Nagle on
(Kludex/uvicorn#3149); the one-connection rows show it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from common import (
    dangliang_command,
    git_describe,
    log,
    machine_info,
    median,
    pg_drop_schema,
    remove_sqlite,
    render_table,
)

from dangliang.application import Dangliang, bootstrap
from dangliang.demo.county_inputs import INPUT_FILES, PERFORMANCE_FILES
from dangliang.demo.generator import generate
from dangliang.domain.periods import Period
from dangliang.payouts import runs as payouts
from dangliang.payouts.statements import write_statement
from dangliang.settings import Settings, parse_db_url

SEED = 42
YEAR = 2024
MONTH = "2024-03"
API = "/api/v1"
INPUTS = ("scores", "income", "pay-levels", "tasks", "force-majeure")
PERFORMANCE_INPUTS = ("pools", "staff-coefficients", "outside-items")
BASELINE_CALLS = 20


# --------------------------------------------------------------------------------------------
# setup


def ensure_county(workdir: Path, records: int) -> Path:
    county = workdir / f"county-{records}"
    if (county / "services.csv").exists() and (county / "performance_pools.csv").exists():
        log(f"reusing county {county}")
        return county
    log(f"generating {records:,} records into {county} …")
    generate(county, records=records, seed=SEED, year=YEAR)
    return county


def payout_run_of_month(service: Dangliang) -> str | None:
    """The latest approved (or paid) payout run of MONTH, if any."""
    runs = [
        r
        for r in service.payout_runs().values()
        if r.period == MONTH and r.state in ("approved", "paid")
    ]
    return max(runs, key=lambda r: r.recorded_at_position).run_id if runs else None


def prepare(service: Dangliang, workdir: Path, records: int) -> tuple[str, dict[str, float]]:
    """The county in the database (unless it holds an approved run of MONTH already) and the
    run's id; the setup's timings."""
    timings: dict[str, float] = {}
    found = payout_run_of_month(service)
    if found:
        log(f"reusing the database: run {found}")
        return found, {"reused database": 0.0}
    county = ensure_county(workdir, records)
    files = {
        name: county / f"{name}.csv" for name in ("institutions", "headcount", "staff", "catalogue")
    }
    files |= {k: county / f for k, f in (INPUT_FILES | PERFORMANCE_FILES).items()}
    files["services"] = county / "services.csv"
    actor = "bench"

    def step(name: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - started
        return out

    step("institutions", lambda: service.load_institutions(files["institutions"], actor=actor))
    step("headcount", lambda: service.load_headcount(files["headcount"], actor=actor))
    step("staff", lambda: service.load_staff(files["staff"], actor=actor))
    step("catalogue", lambda: service.load_catalogue(files["catalogue"], actor=actor))
    for kind in INPUTS:
        path = files[kind.replace("-", "_")]
        step(kind, lambda k=kind, p=path: service.load_inputs(k, p, actor=actor))
    log(f"importing {records:,} records …")
    step(
        "import services",
        lambda: service.import_services(files["services"], actor=actor, today=date(2025, 6, 1)),
    )
    step("policy zhuji", lambda: service.adopt_policy("zhuji", reference="bench", actor=actor))
    for kind in PERFORMANCE_INPUTS:
        path = files[kind.replace("-", "_")]
        step(kind, lambda k=kind, p=path: service.load_inputs(k, p, actor=actor))
    step("catch-up", service.catch_up)
    run = step(
        "payout run",
        lambda: service.run_payout(
            Period.parse(year=None, month=MONTH), actor="bench-maker", today=date.today()
        ),
    )
    step(
        "approve",
        lambda: service.approve_payout(run.run_id, reference="bench", actor="bench-checker"),
    )
    return run.run_id, timings


def tokens(service: Dangliang) -> dict[str, str]:
    """A fresh token for each benchmark user (added the first time)."""
    existing = {u.name for u in service.users.all_users()}
    out = {}
    for name, role, institution in (
        ("bench-admin", "admin", None),
        ("bench-auditor", "auditor", None),
        ("bench-clerk", "clerk", "C01"),
    ):
        if name in existing:
            out[role] = service.users.issue_token(name, actor="bench")
        else:
            out[role] = service.users.add(name, role=role, institution=institution, actor="bench")
    return out


# --------------------------------------------------------------------------------------------
# the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base_url: str
    log_path: Path


def start_server(url: str, workers: int, workdir: Path) -> Server:
    port = free_port()
    log_path = workdir / f"serve-{workers}w-{port}.log"
    env = {**os.environ}
    env.pop("DANGLIANG_DB", None)
    cmd = [*dangliang_command(), "serve", "--db", url, "--port", str(port)]
    cmd += ["--workers", str(workers)]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dangliang serve exited:\n{log_path.read_text()[-3000:]}")
        try:
            # every worker must be up: ask more times than there are workers
            if all(httpx.get(f"{base}{API}/health").status_code == 200 for _ in range(4)):
                return Server(proc, base, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(Server(proc, base, log_path))
    raise RuntimeError("dangliang serve did not answer within 60 s")


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


def server_problems(server: Server) -> dict[str, int]:
    text = server.log_path.read_text(errors="replace")
    return {
        "tracebacks": text.count("Traceback (most recent call last)"),
        "database is locked": text.count("database is locked"),
        "500 in access log": text.count('" 500'),
    }


# --------------------------------------------------------------------------------------------
# the load


@dataclass
class Endpoint:
    name: str
    path: str
    who: str | None  # role whose token is sent; None: no token
    baseline: str | None  # key of the in-process baseline


def endpoints(run_id: str) -> list[Endpoint]:
    run = run_id.replace("#", "%23")
    return [
        Endpoint("health", f"{API}/health", None, None),
        Endpoint(
            "statement xlsx", f"{API}/payout-runs/{run}/statement?format=xlsx", "auditor", "xlsx"
        ),
        Endpoint(
            "statement json", f"{API}/payout-runs/{run}/statement?format=json", "auditor", "json"
        ),
        Endpoint("equivalents 2024", f"{API}/equivalents?period={YEAR}", "admin", "equivalents"),
        Endpoint(
            "equivalents C01 (clerk)",
            f"{API}/equivalents?period={YEAR}&institution=C01",
            "clerk",
            "equivalents",
        ),
        Endpoint("run summary", f"{API}/payout-runs/{run}", "auditor", None),
        Endpoint("centre's statement (clerk)", f"{API}/payout-runs/{run}", "clerk", None),
    ]


@dataclass
class Batch:
    latencies: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    wall: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies) if self.latencies else float("nan")

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def load(
    base_url: str,
    path: str,
    headers: dict[str, str],
    concurrency: int,
    requests: int,
    seconds: float,
) -> Batch:
    """`requests` GETs of `path` from `concurrency` connections (no new one started after
    `seconds`), after a few warm-up requests (errors counted, latencies not)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    batch = Batch()
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=300) as client:

        async def one(record: bool) -> None:
            started = time.perf_counter()
            try:
                response = await client.get(path, headers=headers)
                elapsed = time.perf_counter() - started
                if response.is_success and response.content:
                    if record:
                        batch.latencies.append(elapsed)
                    return
                kind = f"HTTP {response.status_code}: {response.text[:120]}"
            except httpx.HTTPError as e:
                kind = f"{type(e).__name__}: {e}"[:160]
            batch.errors[kind] += 1

        await asyncio.gather(*(one(False) for _ in range(min(concurrency, 4))))
        remaining = requests
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                await one(True)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        batch.wall = time.perf_counter() - started
    return batch


def in_process(service: Dangliang, run_id: str, workdir: Path) -> dict[str, float]:
    """Mean seconds of the endpoints' work called directly (no HTTP), one at a time (the mean:
    a garbage collection every few calls is part of the cost, as it is in the server)."""

    def statement(fmt: str) -> Callable[[], bytes]:
        def build() -> bytes:
            run = service.payout_run(run_id)
            with tempfile.TemporaryDirectory(dir=workdir) as folder:
                out = Path(folder) / f"statement.{fmt}"
                return write_statement(payouts.run_json(run), out).read_bytes()

        return build

    work: dict[str, Callable[[], Any]] = {
        "xlsx": statement("xlsx"),
        "json": statement("json"),
        "equivalents": lambda: service.equivalents(str(YEAR)),
    }
    out = {}
    for key, fn in work.items():
        fn()  # warm
        times = []
        for _ in range(BASELINE_CALLS):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        out[key] = statistics.fmean(times)
    return out


# --------------------------------------------------------------------------------------------
# report


def ms(x: float) -> str:
    return "n/a" if x != x else f"{x * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--db", default=None, metavar="URL")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dangliang-bench-api"
    )
    parser.add_argument("--workers", default="1,2", help="comma-separated, e.g. 1,2")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated, e.g. 1,16,64")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    workers = [int(w) for w in args.workers.split(",")]
    concurrency = [int(c) for c in args.concurrency.split(",")]
    url = args.db or f"sqlite:///{args.workdir / f'api-{args.records}.db'}"

    started = time.perf_counter()
    service = bootstrap(Settings(url))
    try:
        run_id, setup_times = prepare(service, args.workdir, args.records)
        keys = tokens(service)
        head = service.catch_up()
        # figures[(workers, concurrency, endpoint)][statistic] = [per repeat]
        figures: dict[tuple[int, int, str], dict[str, list[float]]] = collections.defaultdict(
            lambda: collections.defaultdict(list)
        )
        errors: collections.Counter[str] = collections.Counter()
        problems: collections.Counter[str] = collections.Counter()
        baselines: dict[str, list[float]] = collections.defaultdict(list)
        for i in range(args.repeat):
            for key, seconds in in_process(service, run_id, args.workdir).items():
                baselines[key].append(seconds)
            for w in workers:
                log(f"repeat {i + 1}/{args.repeat}: dangliang serve --workers {w} …")
                server = start_server(url, w, args.workdir)
                try:
                    for c in concurrency:
                        for ep in endpoints(run_id):
                            headers = {"Authorization": f"Bearer {keys[ep.who]}"} if ep.who else {}
                            batch = asyncio.run(
                                load(
                                    server.base_url,
                                    ep.path,
                                    headers,
                                    c,
                                    args.requests,
                                    args.seconds,
                                )
                            )
                            f = figures[(w, c, ep.name)]
                            f["requests"].append(batch.requests)
                            f["errors"].append(sum(batch.errors.values()))
                            f["rps"].append(batch.requests / batch.wall if batch.wall else 0)
                            f["mean"].append(batch.mean)
                            for p in (50, 90, 99):
                                f[f"p{p}"].append(batch.percentile(p))
                            for kind, n in batch.errors.items():
                                errors[f"{w} worker(s), {c} conn, {ep.name}: {kind}"] += n
                            log(
                                f"  {c:>3} conn  {ep.name:<24} {batch.requests / batch.wall:7.1f}"
                                f" req/s  p50 {ms(batch.percentile(50))} ms"
                                f"  p99 {ms(batch.percentile(99))} ms"
                                f"  errors {sum(batch.errors.values())}"
                            )
                finally:
                    stop_server(server)
                for kind, n in server_problems(server).items():
                    problems[f"{w} worker(s): {kind}"] += n
    finally:
        service.close()

    info = machine_info(
        {
            "database": Settings(url).database.describe(),
            "records": f"{args.records:,}",
            "log head": f"{head:,}",
            "run": run_id,
            "per endpoint and setting": f"{args.requests} requests or {args.seconds:g} s",
            "repeats": str(args.repeat),
            "code": git_describe(),
        }
    )
    print("# dangliang HTTP API load benchmark\n")
    for k, v in info.items():
        print(f"- {k}: {v}")
    print("\nsetup (s): " + ", ".join(f"{k} {v:.2f}" for k, v in setup_times.items()))
    base = {k: median(v) for k, v in baselines.items()}
    print(
        f"\nin-process (mean of {BASELINE_CALLS} calls, median over the repeats): "
        + ", ".join(f"{k} {ms(v)} ms" for k, v in base.items())
    )
    rows = []
    eps = {ep.name: ep for ep in endpoints(run_id)}
    for (w, c, name), f in figures.items():
        ep = eps[name]
        mean, p50 = median(f["mean"]), median(f["p50"])
        health = median(figures[(w, c, "health")]["p50"])
        rows.append(
            [
                str(w),
                str(c),
                name,
                f"{int(median(f['requests']))}",
                f"{int(sum(f['errors']))}",
                f"{median(f['rps']):.0f}",
                ms(mean),
                ms(p50),
                ms(median(f["p90"])),
                ms(median(f["p99"])),
                ms(base[ep.baseline]) if ep.baseline else "",
                f"{mean / base[ep.baseline]:.1f}" if ep.baseline else "",
                f"{p50 / health:.1f}" if name != "health" else "",
            ]
        )
    print(
        "\nmedians over the repeats; latencies in ms (client side); errors: total over the "
        "repeats; ×in-proc = mean / in-process (at 1 connection: what HTTP adds); ×health = "
        "p50 / health's p50 in the same setting\n"
    )
    headers = [
        "workers",
        "conn",
        "endpoint",
        "requests",
        "errors",
        "req/s",
        "mean",
        "p50",
        "p90",
        "p99",
        "in-proc",
        "×in-proc",
        "×health",
    ]
    right = [True, True, False, *([True] * 10)]
    print(render_table(headers, rows, right, markdown=True))
    print("\nerrors during the load: " + ("none" if not errors else ""))
    for kind, n in errors.most_common():
        print(f"- {n} × {kind}")
    print("server logs: " + ", ".join(f"{k} {v}" for k, v in sorted(problems.items())))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.drop:
        db = parse_db_url(url)
        if db.schema and url.startswith("postgres"):
            pg_drop_schema(url.split("?")[0], db.schema)
        elif url.startswith("sqlite:///"):
            remove_sqlite(Path(url.removeprefix("sqlite:///")))


if __name__ == "__main__":
    main()
