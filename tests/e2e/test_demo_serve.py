"""`dangliang demo --serve`: the demo leaves December for the workbench, prints a login per
role and serves the workbench; the printed logins sign in."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx

from dangliang.application import bootstrap
from dangliang.settings import Settings
from tests.conftest import DANGLIANG_CLI
from tests.e2e.test_api_cli import free_port


def _sign_in(base: str, name: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, follow_redirects=False)
    form = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
    assert token
    done = client.post(
        "/login",
        data={"username": name, "password": password, "login_csrf": token.group(1)},
    )
    assert done.status_code == 303, done.text[:300]
    return client


def test_demo_serve_leaves_december_and_prints_logins_that_work(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db_url = f"sqlite:///{tmp_path / 'demo.db'}"
    server = subprocess.Popen(
        [
            DANGLIANG_CLI,
            "--db",
            db_url,
            "demo",
            "--records",
            "3000",
            "--out",
            str(tmp_path / "out"),
            "--serve",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "DANGLIANG_ACTOR": "e2e", "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                raise AssertionError("demo --serve exited:\n" + "".join(lines))
            lines.append(line)
            if "Application startup complete" in line:
                break
        printed = "".join(lines)
        logins = dict(re.findall(r"^  (演示\S+)  (\S+)   ", printed, re.M))
        assert set(logins) == {"演示管理员", "演示审计员", "演示填报员"}, printed
        december = tmp_path / "out" / "services-2024-12.csv"
        assert str(december.relative_to(tmp_path)) in printed or str(december) in printed

        admin = _sign_in(base, "演示管理员", logins["演示管理员"])
        assert admin.get("/audit").status_code == 200
        clerk = _sign_in(base, "演示填报员", logins["演示填报员"])
        assert clerk.get("/audit").status_code == 403
    finally:
        server.terminate()
        server.wait(timeout=30)

    app = bootstrap(Settings(db_url))
    try:
        runs = app.payout_runs()
        assert {r.period for r in runs.values() if r.state == "paid"} >= {
            f"2024-{m:02d}" for m in range(1, 12)
        }
        assert not [r for r in runs.values() if r.period in ("2024-12", "2024")]
        held = december.read_text(encoding="utf-8").splitlines()
        assert len(held) > 1 and all(",2024-12-" in row for row in held[1:])
        december_records = app.equivalents("2024-12")["institutions"]
        assert sum(r["records"] for r in december_records) == 0  # not imported: left to do
    finally:
        app.close()
