"""`dangliang users …` and `dangliang serve` through the real console script: a token from
the CLI works against a real server over loopback; a revoked one stops at once."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import httpx
import pytest

from tests.conftest import DANGLIANG_CLI
from tests.e2e.test_equivalents_cli import run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(base: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"serve exited: {server.communicate()}")
        try:
            if httpx.get(base + "/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the server did not come up within 60 s")


@pytest.mark.slow
def test_users_and_a_real_server(records_url: str) -> None:
    db_url = records_url

    added = run("users", "add", "局管理员", "--role", "admin", db=db_url)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    assert token.startswith("dl_") and "shown once" in added.stdout
    assert run("users", "add", "局管理员", "--role", "admin", db=db_url).returncode == 1
    unknown = run("users", "add", "某人", "--role", "clerk", "--institution", "X9", db=db_url)
    assert unknown.returncode == 1 and "unknown institution: X9" in unknown.stderr
    no_institution = run("users", "add", "某人", "--role", "clerk", db=db_url)
    assert no_institution.returncode == 1 and "needs --institution" in no_institution.stderr
    clerk = run("users", "add", "C01填报员", "--role", "clerk", "--institution", "C01", db=db_url)
    clerk_token = clerk.stdout.strip().splitlines()[-1]
    listed = run("users", "list", db=db_url)
    assert "C01填报员" in listed.stdout and "局管理员" in listed.stdout
    assert token not in listed.stdout and "added by e2e" in listed.stdout

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [DANGLIANG_CLI, "serve", "--port", str(port), "--db", db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DANGLIANG_ACTOR": "e2e"},
    )
    try:
        wait_until_up(base, server)
        me = httpx.get(base + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["role"] == "admin"
        headers = {"Authorization": f"Bearer {clerk_token}"}
        found = httpx.get(base + "/api/v1/equivalents?period=2024", headers=headers).json()
        assert found["institutions"] and all(
            r["code"].startswith("C01") for r in found["institutions"]
        )
        assert httpx.get(base + "/docs").status_code == 200
        workbench = httpx.get(base + "/", headers={"Accept": "text/html"})
        assert workbench.status_code == 303 and workbench.headers["location"] == "/login?next=/"
        assert "登录" in httpx.get(base + "/login").text
        revoked = run("users", "revoke", "C01填报员", "--reason", "调岗", db=db_url)
        assert revoked.returncode == 0, revoked.stderr
        assert httpx.get(base + "/api/v1/me", headers=headers).status_code == 401
        renewed = run("users", "token", "局管理员", db=db_url).stdout.strip().splitlines()[-1]
        old = httpx.get(base + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        new = httpx.get(base + "/api/v1/me", headers={"Authorization": f"Bearer {renewed}"})
        assert (old.status_code, new.status_code) == (401, 200)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_refuses_a_bad_database_url() -> None:
    refused = run("serve", db="mysql://nowhere/x")
    assert refused.returncode == 2 and "unsupported database URL" in refused.stderr
