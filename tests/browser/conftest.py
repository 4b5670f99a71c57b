"""The workbench in a real browser: Playwright driving headless Chromium over a live server.

The server is the whole app (`dangliang.web.create_site`) under uvicorn, in a thread of the
test process, on a copy of the API tests' prepared county on SQLite (`world_copy`; each
person has a password). Chromium is Debian's (`apt-get install chromium fonts-noto-cjk`):
Playwright's own download is never used. Without Chromium these tests are skipped with a
message, except in CI (`CI=true`), where a missing browser fails the run.

Screenshots of the main pages are written to `docs/screenshots/` when
`DANGLIANG_SCREENSHOTS=1` (how README's pictures are refreshed); otherwise to a temporary
folder, so an ordinary test run leaves the working tree as it was.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from dangliang.application import Dangliang, bootstrap
from dangliang.demo.generator import GeneratedCounty
from dangliang.settings import Settings
from dangliang.web import create_site
from tests.api.conftest import PASSWORD, PEOPLE, world_copy
from tests.conftest import IN_CI, PreparedDatabases

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str | None:
    """Debian's Chromium (or `DANGLIANG_CHROMIUM`), never a browser downloaded at run time."""
    named = os.environ.get("DANGLIANG_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    for candidate in CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


def require_browser() -> str:
    found = chromium_path()
    if found:
        return found
    message = (
        "Chromium not found: the browser tests need it (Debian/Ubuntu: "
        "`apt-get install chromium fonts-noto-cjk`; or set DANGLIANG_CHROMIUM to a Chromium)"
    )
    if IN_CI:
        pytest.fail(message + " — required in CI")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """uvicorn serving the workbench in a thread; stopped at the end of the session."""

    def __init__(self, service: Dangliang):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_site(service), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def chromium() -> str:
    return require_browser()


@pytest.fixture(scope="session")
def live(
    chromium: str, prepared_databases: PreparedDatabases, county: GeneratedCounty
) -> Iterator[LiveServer]:
    url, _ = world_copy(prepared_databases, "sqlite", county)
    service = bootstrap(Settings(url))
    with LiveServer(service) as server:
        server.service = service  # type: ignore[attr-defined]
        server.county = county  # type: ignore[attr-defined]
        yield server
    service.close()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    """Chromium for one test module. Playwright's synchronous API keeps an event loop running
    in this thread while it is open, which would break any later test of the same worker
    that calls `asyncio.run`; so it is closed after each module (a launch takes ~0.3 s)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def signed_in() -> dict[str, Any]:
    """Each person's cookies after their first sign-in through the form in this run."""
    return {}


@pytest.fixture
def as_user(
    browser: Any, live: LiveServer, signed_in: dict[str, Any]
) -> Iterator[Callable[[str], Any]]:
    """`as_user("auditor")`: a fresh browser context signed in, its page (blank: the test goes
    where it wants). A person's first sign-in of the run goes through the form; later contexts
    start with the cookies it left (test_sign_in.py tests the form itself)."""
    contexts: list[Any] = []

    def open_as(who: str) -> Any:
        context = browser.new_context(
            locale="zh-CN",
            viewport={"width": 1366, "height": 900},
            accept_downloads=True,
            storage_state=signed_in.get(who),
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        if who not in signed_in:
            page.goto(live.url + "/login")
            page.get_by_label("用户名").fill(PEOPLE[who])
            page.get_by_label("密码").fill(PASSWORD)
            page.get_by_role("button", name="登录").click()
            page.wait_for_url(lambda url: "/login" not in url)
            signed_in[who] = context.storage_state()
        return page

    yield open_as
    for context in contexts:
        context.close()


def chart_option(page: Any, chart_id: str) -> dict[str, Any]:
    """The option ECharts is drawing in `#chart_id` (the numbers, not the pixels)."""
    page.wait_for_function(
        "id => window.echarts && echarts.getInstanceByDom(document.getElementById(id))",
        arg=chart_id,
    )
    option: dict[str, Any] = page.evaluate(
        "id => echarts.getInstanceByDom(document.getElementById(id)).getOption()", chart_id
    )
    return option


def accessibility_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2 A/AA violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    found: dict[str, Any] = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}, "
        "resultTypes: ['violations']})"
    )
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in found["violations"]
    ]


@pytest.fixture(scope="session")
def screenshot(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Any, str], Path]:
    folder = (
        SCREENSHOTS
        if os.environ.get("DANGLIANG_SCREENSHOTS") == "1"
        else tmp_path_factory.mktemp("screenshots")
    )
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path))  # what the window shows first (1366×900)
        return path

    return take
