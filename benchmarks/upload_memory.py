#!/usr/bin/env python
"""Upload memory: the peak resident memory of a real `dangliang serve` (uvicorn, one worker,
a child process) while it receives one large upload, read from /proc.

Run from the project's virtualenv:

    . .venv/bin/activate
    python benchmarks/upload_memory.py --mb 300
    python benchmarks/upload_memory.py --mb 300 --limit-mb 100   # what a refusal costs

Options: `--mb N` (the upload's size, default 300), `--limit-mb M` (the server's
`DANGLIANG_MAX_UPLOAD_MB`; default: the server's own default), `--routes` (comma-separated, of
`api`, `api-chunked`, `insurance`, `web`, `web-chunked`, `json`; default all), `--workdir DIR`
(default `$TMPDIR/dangliang-bench-upload`: the database, the upload file and the server's
log). `PYTHONPATH=DIR/src` runs the server (and the set-up) on another checkout's code, for a
before/after.

Setup (not timed): an empty SQLite county, one administrator with a token and a password, a
file of N MB whose header no import format knows (so each import is refused at once after
the upload, and what is measured is the upload, not an import).

Measured, per route, on a server started afresh for that route (so one route's garbage does
not count against the next): the server's resident memory (`VmRSS`) after start-up and one
warm-up request, its peak during the upload (`VmHWM`, reset through `/proc/PID/clear_refs`
just before, and the largest `VmRSS` seen by sampling every 10 ms), the status the server
answered and the seconds the upload took. Routes:
- `api` — `POST /api/v1/imports/services`, multipart with a Content-Length (httpx streams the
  file from disk);
- `api-chunked` — the same body sent with `Transfer-Encoding: chunked` (no Content-Length);
- `insurance` — `POST /api/v1/insurance/imports/claims`;
- `web` — the workbench's `POST /imports` (a session signed in before the measurement, the
  CSRF token as a form field before the file, as the browser sends it);
- `web-chunked` — the same, chunked;
- `json` — not an upload: a JSON body as large (`{"period": "xxx…"}`, chunked) to
  `POST /api/v1/payout-runs`, a route that reads its body into memory.
The client runs in this process and streams the file; it holds only a chunk at a time.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from api_load import API, Server, free_port, stop_server
from common import (
    dangliang_command,
    git_describe,
    log,
    machine_info,
    remove_sqlite,
    render_table,
)

from dangliang.application import bootstrap
from dangliang.settings import Settings

PASSWORD = "upload-bench-42"
NAME = "bench-uploader"
CHUNK = 1 << 20


def prepare(url: str) -> str:
    """An administrator with a password; its API token."""
    service = bootstrap(Settings(url))
    try:
        existing = {u.name for u in service.users.all_users()}
        if NAME in existing:
            token = service.users.issue_token(NAME, actor="bench")
        else:
            token = service.users.add(NAME, role="admin", institution=None, actor="bench")
        service.users.set_password(NAME, PASSWORD, actor="bench", must_change=False)
        return token
    finally:
        service.close()


def upload_file(workdir: Path, mb: int) -> Path:
    """N MB of lines under a header no format knows (refused at once once received)."""
    path = workdir / f"upload-{mb}mb.csv"
    if path.exists() and path.stat().st_size == mb * CHUNK:
        return path
    line = b"not_a_column,also_not\n" + b"x" * 40 + b"," + b"y" * 40 + b"\n"
    block = (line * (CHUNK // len(line) + 1))[:CHUNK]
    with path.open("wb") as out:
        out.write(b"not_a_column,also_not\n")
        out.write(block[: CHUNK - 22])
        for _ in range(mb - 1):
            out.write(block)
    return path


def start(url: str, workdir: Path, limit_mb: int | None) -> Server:
    port = free_port()
    log_path = workdir / f"serve-{port}.log"
    env = {**os.environ}
    env.pop("DANGLIANG_DB", None)
    if limit_mb is not None:
        env["DANGLIANG_MAX_UPLOAD_MB"] = str(limit_mb)
    cmd = [*dangliang_command(), "serve", "--db", url, "--port", str(port), "--workers", "1"]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dangliang serve exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}{API}/health").status_code == 200:
                return Server(proc, base, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(Server(proc, base, log_path))
    raise RuntimeError("dangliang serve did not answer within 60 s")


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Sampler(threading.Thread):
    """The largest VmRSS of a process, sampled every 10 ms until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, status_kib(self.pid, "VmRSS"))
            except (OSError, KeyError):
                return
            self.done.wait(0.01)


def multipart_chunks(path: Path, boundary: str, fields: dict[str, str]) -> Iterator[bytes]:
    for name, value in fields.items():
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: text/csv\r\n\r\n'
    ).encode()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def json_chunks(path: Path) -> Iterator[bytes]:
    """A JSON body as large as the file: `{"period": "<the file's bytes as letters>"}`."""
    yield b'{"period": "'
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield b"x" * len(chunk)
    yield b'"}'


def web_session(client: httpx.Client) -> str:
    """Sign in; the session's CSRF token."""
    form = client.get("/login")
    found = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
    assert found, form.text[:300]
    signed = client.post(
        "/login",
        data={"username": NAME, "password": PASSWORD, "login_csrf": found.group(1), "next": "/"},
    )
    assert signed.status_code in (200, 303), signed.text[:300]
    page = client.get("/account/password", headers={"Accept": "text/html"})
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token, page.text[:300]
    return token.group(1)


def send(route: str, client: httpx.Client, token: str, path: Path) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token}"}
    if route == "api":
        with path.open("rb") as f:
            return client.post(f"{API}/imports/services", headers=auth, files={"file": f})
    if route == "insurance":
        with path.open("rb") as f:
            return client.post(f"{API}/insurance/imports/claims", headers=auth, files={"file": f})
    if route == "json":
        return client.post(
            f"{API}/payout-runs",
            headers={**auth, "Content-Type": "application/json"},
            content=json_chunks(path),
        )
    boundary = secrets.token_hex(12)
    kind = f"multipart/form-data; boundary={boundary}"
    if route == "api-chunked":
        body = multipart_chunks(path, boundary, {})
        return client.post(
            f"{API}/imports/services", headers={**auth, "Content-Type": kind}, content=body
        )
    csrf = client.cookies["bench_csrf"]
    fields = {"csrf_token": csrf, "kind": "services"}
    if route == "web":
        with path.open("rb") as f:
            return client.post(
                "/imports", headers={"Accept": "text/html"}, data=fields, files={"file": f}
            )
    body = multipart_chunks(path, boundary, fields)
    return client.post(
        "/imports", headers={"Content-Type": kind, "Accept": "text/html"}, content=body
    )


def measure(route: str, url: str, token: str, path: Path, workdir: Path, limit: int | None):
    server = start(url, workdir, limit)
    pid = server.proc.pid
    try:
        with httpx.Client(base_url=server.base_url, timeout=600) as client:
            client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})  # warm
            if route.startswith("web"):  # signing in hashes a password: not the upload's cost
                client.cookies.set("bench_csrf", web_session(client))
            time.sleep(0.5)
            before = status_kib(pid, "VmRSS")
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM
            sampler = Sampler(pid)
            sampler.start()
            started = time.perf_counter()
            try:
                response = send(route, client, token, path)
                status = str(response.status_code)
            except httpx.HTTPError as e:
                status = type(e).__name__
            took = time.perf_counter() - started
            time.sleep(0.2)
            sampler.done.set()
            sampler.join()
            hwm = status_kib(pid, "VmHWM")
            after = status_kib(pid, "VmRSS")
    finally:
        stop_server(server)
    return before, max(hwm, sampler.peak), after, status, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=300)
    parser.add_argument("--limit-mb", type=int, default=None)
    parser.add_argument("--routes", default="api,api-chunked,insurance,web,web-chunked,json")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dangliang-bench-upload"
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    database = args.workdir / "upload.db"
    remove_sqlite(database)  # a fresh county each run (a run on other code may differ)
    url = f"sqlite:///{database}"
    token = prepare(url)
    path = upload_file(args.workdir, args.mb)
    rows = []
    for route in args.routes.split(","):
        log(f"{route}: {args.mb} MB …")
        before, peak, after, status, took = measure(
            route, url, token, path, args.workdir, args.limit_mb
        )
        mib = 1024
        rows.append(
            [
                route,
                f"{args.mb}",
                status,
                f"{before / mib:.0f}",
                f"{peak / mib:.0f}",
                f"{(peak - before) / mib:+.0f}",
                f"{after / mib:.0f}",
                f"{took:.1f}",
            ]
        )
        log("  " + "  ".join(rows[-1]))
    info = machine_info(
        {
            "server": "dangliang serve --workers 1 (uvicorn), SQLite",
            "DANGLIANG_MAX_UPLOAD_MB": str(args.limit_mb) if args.limit_mb else "(default)",
            "code": git_describe(),
        }
    )
    print("# dangliang upload memory\n")
    for k, v in info.items():
        print(f"- {k}: {v}")
    print()
    headers = ["route", "MB", "status", "RSS before", "peak", "peak - before", "after", "s"]
    print(render_table(headers, rows, markdown=True))
    print("\nmemory in MiB (VmRSS / VmHWM of the server process)")


if __name__ == "__main__":
    main()
