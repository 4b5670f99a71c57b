"""A quick mixed load, on SQLite and PostgreSQL: 10 clients for 3 seconds against the API and
the workbench served by uvicorn (as `dangliang serve` serves them), reading, uploading small
overlapping service files and computing draft runs at once; no answer is a 5xx, and every
write the server accepted is in the log, once. The minute-long version with 50 clients is
`benchmarks/mixed_load.py` (BENCHMARKS.md, "Mixed load")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import uvicorn

from dangliang.api.server import NoDelayH11Protocol
from dangliang.domain.periods import Period
from dangliang.web import create_site
from tests.api.conftest import PASSWORD, PEOPLE, World

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
CLIENTS, SECONDS = 10, 3.0


@pytest.fixture(scope="module")
def mixed_load() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))  # the benchmark's own modules import each other so
    try:
        import mixed_load as module
    finally:
        sys.path.remove(str(BENCHMARKS))
    yield module


@pytest.fixture(scope="module")
def served(world: World) -> Iterator[str]:
    """The site over the world's county, served by uvicorn in a thread; its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_site(world.service),
        host="127.0.0.1",
        port=port,
        http=NoDelayH11Protocol,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


@contextlib.contextmanager
def server_errors() -> Iterator[list[BaseException]]:
    """The exceptions uvicorn logs as "Exception in ASGI application" (a 500) meanwhile."""
    raised: list[BaseException] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                raised.append(record.exc_info[1])

    handler = Collect(logging.ERROR)
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        yield raised
    finally:
        logger.removeHandler(handler)


def test_under_mixed_load_nothing_fails_and_every_accepted_write_is_in_the_log(
    world: World, served: str, mixed_load: ModuleType, tmp_path: Path
) -> None:
    service = world.service
    approved = service.run_payout(Period(2024, 3), actor="maker", today=date(2025, 6, 1))
    service.approve_payout(approved.run_id, reference="load", actor="checker")
    since = service.catch_up()
    target = mixed_load.Target(
        base_url=served,
        tokens=world.tokens,
        session_cookies=mixed_load.sign_in(served, PEOPLE["admin"], PASSWORD),
        files=mixed_load.import_files(world.county.files["services"]),
        approved_run=approved.run_id.replace("#", "%23"),
        run_month="2024-04",
        what_if_period="2024-03",
    )
    with server_errors() as raised:
        results = asyncio.run(mixed_load.run_load(target, CLIENTS, SECONDS, seed=3))
    service.catch_up()

    wrong = mixed_load.check(service, target, results, since)
    assert raised == [], raised  # no traceback in the server (SQLite: see sqlite_write_gate)
    assert wrong == [], mixed_load.report(results)
    assert results.accepted_imports and results.accepted_runs, mixed_load.report(results)
    kinds = {kind for kind, _ in results.statuses}
    assert {"import services", "run draft advance", "page overview"} <= kinds
    counted = mixed_load.summary(service, target, results, since)
    assert counted["load records in the log"] >= counted["load records expected"] > 0
    httpx.get(f"{served}/api/v1/health").raise_for_status()  # still serving
