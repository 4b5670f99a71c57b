#!/usr/bin/env python
"""Mixed load: many clients at once reading, importing and computing runs against a real
`dangliang serve`, then a check that every write the server accepted is in the log.

Run from the project's virtualenv:

    . .venv/bin/activate
    python benchmarks/mixed_load.py                       # PostgreSQL, 50 clients, 60 s
    python benchmarks/mixed_load.py --db sqlite --clients 20 --seconds 30 --workers 2

Options: `--db postgres|sqlite|URL` (default `postgres`: schema `bench_mixed` in
`postgresql://postgres@127.0.0.1:5432/test`, dropped and built afresh; `sqlite`: a fresh file
in the workdir), `--records N` (default 20,000), `--clients C` (default 50), `--seconds S`
(default 60), `--workers W` (uvicorn processes, default 1), `--seed K`, `--workdir DIR`
(default `$TMPDIR/dangliang-bench-mixed`: the county, the server's log).

Setup (in-process, not timed): the county of `api_load.prepare` (`generate --seed 42`, the
reference data, the inputs, N service records, the Zhuji bundle, a payout run of 2024-03
approved), an admin, an auditor and a clerk of C01 with tokens, a workbench password for the
admin, and 40 small import files (25 service rows each, new source ids, each file sharing 10
rows with the next: overlapping imports).

The load: C clients (asyncio + httpx in this process, a new connection per request) for S
seconds, each choosing its next request at random by these weights (`ACTIONS`): reads — the
equivalents of C01 as its clerk and of the county as the admin, the approved run's statement
(JSON, XLSX) and summary, the list of runs, three workbench pages (overview, runs,
institution C01, signed in); writes — an upload of one of the import files
(`POST /api/v1/imports/services`), a draft advance run of 2024-04 (`POST /api/v1/payout-runs`,
each superseding the last) and a what-if of the 2024-03 advances (`POST
/api/v1/compensation/what-if`, computed, not written).

Checked afterwards, on the database: no 5xx and no transport error; every record of every
accepted import (200) is in the log exactly once (one `ServiceRecord.Recorded` per source id,
and no load record twice); every accepted run (201) is recorded, under its own id. The
server's log is scanned for tracebacks. Printed: requests by kind with p50/p95/p99 latency
(client side), answers by status, throughput, what was checked.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import csv
import io
import random
import re
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from api_load import API, prepare, server_problems, start_server, stop_server, tokens
from common import git_describe, log, machine_info, pg_drop_schema, remove_sqlite, render_table

from dangliang.application import Dangliang, bootstrap
from dangliang.ledger.compact import SERVICE_RECORD_TOPIC
from dangliang.settings import Settings

PG_BASE = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_mixed"
PASSWORD = "mixed-load-42"
RECORDED = "dangliang.domain.service:ServiceRecord.Recorded"
LOAD_PREFIX = "LOAD"
FILES, ROWS_PER_FILE, OVERLAP = 40, 25, 10


# --------------------------------------------------------------------------------------------
# what the clients send


@dataclass
class Target:
    """What the load runs against: the server, the credentials, the import files, the
    approved run to read and the month to compute draft runs of."""

    base_url: str
    tokens: dict[str, str]  # admin, auditor, clerk
    session_cookies: dict[str, str]  # the admin's workbench session
    files: list[tuple[str, bytes, list[str]]]  # (name, content, its source ids)
    approved_run: str
    run_month: str
    what_if_period: str


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    statuses: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    accepted_imports: list[int] = field(default_factory=list)
    accepted_runs: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # 5xx and transport errors, first lines
    wall: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def server_errors(self) -> int:
        return sum(n for (_, s), n in self.statuses.items() if not s.isdigit() or s >= "500")


Action = Callable[[httpx.AsyncClient, Target, random.Random], Awaitable[httpx.Response]]


def auth(target: Target, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {target.tokens[who]}"}


def read(path: str, who: str) -> Action:
    async def go(client: httpx.AsyncClient, target: Target, _: random.Random) -> httpx.Response:
        return await client.get(path.format(run=target.approved_run), headers=auth(target, who))

    return go


def page(path: str) -> Action:
    async def go(client: httpx.AsyncClient, target: Target, _: random.Random) -> httpx.Response:
        return await client.get(
            path, headers={"Accept": "text/html"}, cookies=target.session_cookies
        )

    return go


async def upload(client: httpx.AsyncClient, target: Target, rng: random.Random) -> httpx.Response:
    n = rng.randrange(len(target.files))
    name, content, _ = target.files[n]
    response = await client.post(
        f"{API}/imports/services",
        headers=auth(target, "admin"),
        files={"file": (name, content, "text/csv")},
    )
    response.extensions["dangliang_file"] = n
    return response


async def draft_run(client: httpx.AsyncClient, target: Target, _: random.Random) -> httpx.Response:
    return await client.post(
        f"{API}/payout-runs", headers=auth(target, "admin"), json={"period": target.run_month}
    )


async def what_if(client: httpx.AsyncClient, target: Target, rng: random.Random) -> httpx.Response:
    price = f"{rng.randint(10, 30)}.00"
    body = {
        "period": target.what_if_period,
        "changes": [{"path": "unit_price.basic_medical", "value": price}],
    }
    return await client.post(
        f"{API}/compensation/what-if", headers=auth(target, "auditor"), json=body
    )


ACTIONS: dict[str, tuple[int, Action]] = {  # kind → (weight, what it sends)
    "read equivalents C01 (clerk)": (
        14,
        read(f"{API}/equivalents?period=2024&institution=C01", "clerk"),
    ),
    "read equivalents county": (4, read(f"{API}/equivalents?period=2024", "admin")),
    "read statement json": (
        10,
        read(f"{API}/payout-runs/{{run}}/statement?format=json", "auditor"),
    ),
    "read statement xlsx": (5, read(f"{API}/payout-runs/{{run}}/statement?format=xlsx", "auditor")),
    "read run summary": (10, read(f"{API}/payout-runs/{{run}}", "clerk")),
    "read runs list": (5, read(f"{API}/payout-runs", "admin")),
    "page overview": (5, page("/")),
    "page runs": (5, page("/runs")),
    "page institution C01": (5, page("/institutions/C01")),
    "import services": (12, upload),
    "run draft advance": (3, draft_run),
    "what-if": (2, what_if),
}


async def run_load(target: Target, clients: int, seconds: float, seed: int) -> Results:
    """`clients` concurrent clients for `seconds`, each sending one request after another."""
    results = Results()
    kinds = list(ACTIONS)
    weights = [ACTIONS[k][0] for k in kinds]
    # A new connection for every request: uvicorn closes a connection idle for its keep-alive
    # timeout (5 s, by its own clock), and on a box this loaded a client taking that connection
    # up at the same moment gets a ReadError that is a race of the two clocks, not the server
    # failing. A loopback connect costs a fraction of a millisecond.
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=target.base_url, limits=limits, timeout=300) as client:
        deadline = time.perf_counter() + seconds

        async def one_client(n: int) -> None:
            rng = random.Random(seed * 1000 + n)
            while time.perf_counter() < deadline:
                kind = rng.choices(kinds, weights)[0]
                started = time.perf_counter()
                try:
                    response = await ACTIONS[kind][1](client, target, rng)
                    await response.aread()
                except httpx.HTTPError as e:
                    status = type(e).__name__
                    results.failures.append(f"{kind}: {status}: {e}"[:300])
                else:
                    status = str(response.status_code)
                    if response.status_code >= 500:
                        results.failures.append(f"{kind}: {status}: {response.text[:200]}")
                    elif kind == "import services" and response.status_code == 200:
                        results.accepted_imports.append(response.extensions["dangliang_file"])
                    elif kind == "run draft advance" and response.status_code == 201:
                        results.accepted_runs.append(response.json()["run_id"])
                results.statuses[(kind, status)] += 1
                results.latencies[kind].append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one_client(n) for n in range(clients)))
        results.wall = time.perf_counter() - started
    return results


# --------------------------------------------------------------------------------------------
# the county, the files, the check


def import_files(services: Path, count: int = FILES) -> list[tuple[str, bytes, list[str]]]:
    """`count` small service files of new records (source ids `LOAD…`, the rows of
    `services` otherwise), each sharing `OVERLAP` rows with the next."""
    with services.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [
            next(reader) for _ in range((count - 1) * (ROWS_PER_FILE - OVERLAP) + ROWS_PER_FILE)
        ]
    source = header.index("source_id")
    for n, row in enumerate(rows):
        row[source] = f"{LOAD_PREFIX}{n:07d}"
    files = []
    step = ROWS_PER_FILE - OVERLAP
    for i in range(count):
        chunk = rows[i * step : i * step + ROWS_PER_FILE]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([header, *chunk])
        files.append((f"load-{i:02d}.csv", out.getvalue().encode(), [r[source] for r in chunk]))
    return files


def recorded_load_sources(service: Dangliang, since: int) -> collections.Counter[str]:
    """How many `ServiceRecord.Recorded` events each load source id has after `since`."""
    found: collections.Counter[str] = collections.Counter()
    recorder = service.log.app_recorder
    start = since + 1
    while True:
        page_ = recorder.select_notifications(
            start=start, limit=10_000, topics=[RECORDED, SERVICE_RECORD_TOPIC]
        )
        if not page_:
            return found
        for notification in page_:
            event = service.log.mapper.to_domain_event(notification)
            source_id = str(getattr(event, "source_id", ""))
            if source_id.startswith(LOAD_PREFIX):
                found[source_id] += 1
        start = page_[-1].id + 1


def check(service: Dangliang, target: Target, results: Results, since: int) -> list[str]:
    """What is wrong with the accepted writes (an empty list: nothing)."""
    wrong = []
    counts = recorded_load_sources(service, since)
    expected = {s for n in set(results.accepted_imports) for s in target.files[n][2]}
    missing = sorted(s for s in expected if counts[s] == 0)
    twice = sorted(s for s, n in counts.items() if n > 1)
    if missing:
        wrong.append(f"{len(missing)} records of accepted imports missing, e.g. {missing[:3]}")
    if twice:
        wrong.append(f"{len(twice)} records recorded more than once, e.g. {twice[:3]}")
    runs = service.payout_runs()
    absent = [r for r in results.accepted_runs if r not in runs]
    if absent:
        wrong.append(f"{len(absent)} accepted runs not recorded: {absent[:5]}")
    if len(set(results.accepted_runs)) != len(results.accepted_runs):
        wrong.append("one run id was answered to two requests")
    if results.server_errors():
        wrong.append(f"{results.server_errors()} 5xx or transport errors: {results.failures[:3]}")
    return wrong


def summary(service: Dangliang, target: Target, results: Results, since: int) -> dict[str, int]:
    counts = recorded_load_sources(service, since)
    return {
        "accepted imports": len(results.accepted_imports),
        "distinct files accepted": len(set(results.accepted_imports)),
        "load records in the log": len(counts),
        "load records expected": len(
            {s for n in set(results.accepted_imports) for s in target.files[n][2]}
        ),
        "accepted runs": len(results.accepted_runs),
        "runs of the month recorded": sum(
            1 for r in service.payout_runs().values() if r.period == target.run_month
        ),
    }


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(results: Results) -> str:
    rows = []
    for kind in ACTIONS:
        xs = results.latencies.get(kind, [])
        statuses = ", ".join(
            f"{s} × {n}" for (k, s), n in sorted(results.statuses.items()) if k == kind
        )
        rows.append(
            [
                kind,
                str(len(xs)),
                *(f"{percentile(xs, p) * 1000:.0f}" for p in (50, 95, 99)),
                statuses,
            ]
        )
    everything = [x for xs in results.latencies.values() for x in xs]
    rows.append(
        [
            "all",
            str(len(everything)),
            *(f"{percentile(everything, p) * 1000:.0f}" for p in (50, 95, 99)),
            f"{results.requests / results.wall:.1f} req/s over {results.wall:.1f} s",
        ]
    )
    headers = ["kind", "requests", "p50 ms", "p95 ms", "p99 ms", "answers"]
    return render_table(headers, rows, [False, True, True, True, True, False], markdown=True)


def by_status(results: Results) -> dict[str, int]:
    out: collections.Counter[str] = collections.Counter()
    for (_, status), n in results.statuses.items():
        out[status] += n
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------------------------
# the script


def sign_in(base_url: str, name: str, password: str) -> dict[str, str]:
    """A workbench session's cookies."""
    with httpx.Client(base_url=base_url) as client:
        form = client.get("/login")
        found = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert found, form.text[:300]
        client.post(
            "/login",
            data={"username": name, "password": password, "login_csrf": found.group(1)},
        )
        return dict(client.cookies)


def database(choice: str, workdir: Path) -> str:
    if choice == "postgres":
        pg_drop_schema(PG_BASE, SCHEMA)
        return f"{PG_BASE}?schema={SCHEMA}"
    if choice == "sqlite":
        path = workdir / "mixed.db"
        remove_sqlite(path)
        return f"sqlite:///{path}"
    return choice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="postgres")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dangliang-bench-mixed"
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    url = database(args.db, args.workdir)
    service = bootstrap(Settings(url))
    try:
        where = Settings(url).database.describe()
        log(f"preparing the county ({args.records:,} records) in {where} …")
        run_id, _ = prepare(service, args.workdir, args.records)
        keys = tokens(service)
        service.users.set_password("bench-admin", PASSWORD, actor="bench", must_change=False)
        files = import_files(args.workdir / f"county-{args.records}" / "services.csv")
        since = service.catch_up()
        server = start_server(url, args.workers, args.workdir)
        try:
            target = Target(
                base_url=server.base_url,
                tokens=keys,
                session_cookies=sign_in(server.base_url, "bench-admin", PASSWORD),
                files=files,
                approved_run=run_id.replace("#", "%23"),
                run_month="2024-04",
                what_if_period="2024-03",
            )
            log(f"{args.clients} clients for {args.seconds:g} s …")
            results = asyncio.run(run_load(target, args.clients, args.seconds, args.seed))
        finally:
            stop_server(server)
        problems = server_problems(server)
        service.catch_up()
        wrong = check(service, target, results, since)
        counted = summary(service, target, results, since)
    finally:
        service.close()

    info = machine_info(
        {
            "database": Settings(url).database.describe(),
            "records": f"{args.records:,}",
            "server": f"dangliang serve --workers {args.workers} (uvicorn)",
            "clients": f"{args.clients} (asyncio + httpx in one process on the same machine)",
            "seconds": f"{args.seconds:g}",
            "code": git_describe(),
        }
    )
    print("# dangliang mixed load\n")
    for k, v in info.items():
        print(f"- {k}: {v}")
    print(f"\n{report(results)}\n")
    print("answers by status: " + ", ".join(f"{s} × {n}" for s, n in by_status(results).items()))
    print("writes: " + ", ".join(f"{k} {v}" for k, v in counted.items()))
    print("server log: " + ", ".join(f"{k} {v}" for k, v in problems.items()))
    print("check: " + ("every accepted write is in the log, no 5xx" if not wrong else ""))
    for line in wrong:
        print(f"- {line}")
    for line in results.failures[:10]:
        print(f"  failure: {line}")
    if wrong:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
