"""A fork server for the fault tests: one process that has imported dangliang forks a child
per command, so a command killed at a chosen moment costs a fork instead of a new interpreter
and its imports (~0.8 s).

`python -m tests.fault.forkserver` reads one JSON request per line on stdin and answers one
JSON line on stdout. A request is a list of commands started together; each is
`{"args": [...], "env": {...}, "cwd": DIR, "out": FILE, "err": FILE, "kill_after": SECONDS
or null, "timeout": SECONDS}`. Each child runs `dangliang ARGS` (the click group the console
script runs) and leaves with its exit code; the server sends SIGKILL to a child still running
`kill_after` seconds after its fork. The server answers twice: `{"pids": [...]}` once the
children are forked (the caller may kill one itself, e.g. when it sees a commit), then each
command's `returncode` (as `subprocess` gives it: -9 when killed) and `elapsed` seconds.

The server opens no database connection and starts no thread, so forking it is safe: every
child connects on its own, as a fresh `dangliang` process would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POLL = 0.0005  # seconds between looks at the children


def _warm_imports() -> None:
    """Import what the commands import lazily, once, here rather than in every child."""
    import eventsourcing.postgres
    import eventsourcing.sqlite
    import psycopg
    import sqlalchemy.dialects.postgresql.psycopg
    import sqlalchemy.dialects.sqlite.pysqlite

    import dangliang.cli.main

    del eventsourcing, psycopg, sqlalchemy, dangliang


def _child(command: dict[str, Any]) -> None:  # pragma: no cover - runs in the forked child
    code = 70
    try:
        os.environ.update(command.get("env") or {})
        tempfile.tempdir = None  # TMPDIR as this command's environment says
        os.chdir(command["cwd"])
        stdin = os.open(os.devnull, os.O_RDONLY)
        out = os.open(command["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(command["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for fd, target in ((stdin, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        from dangliang.cli.main import main

        try:
            main.main(args=list(command["args"]), prog_name="dangliang", standalone_mode=True)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # anything else: report it as the console script would
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_commands(
    commands: Sequence[dict[str, Any]], started_line: Callable[[list[int]], None]
) -> list[dict[str, Any]]:
    """Fork a child per command, tell their pids, kill each that outlives its
    `kill_after`, reap them all."""
    started: dict[int, tuple[int, float, float | None, float]] = {}
    for n, command in enumerate(commands):
        begin = time.monotonic()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            _child(command)
        kill_after = command.get("kill_after")
        deadline = begin + float(command.get("timeout", 600))
        started[pid] = (n, begin, None if kill_after is None else begin + kill_after, deadline)
    started_line(list(started))
    results: list[dict[str, Any]] = [{} for _ in commands]
    while started:
        now = time.monotonic()
        for pid, (n, begin, kill_at, deadline) in list(started.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                results[n] = _result(status, begin)
                del started[pid]
                continue
            if (kill_at is not None and now >= kill_at) or now >= deadline:
                os.kill(pid, signal.SIGKILL)  # a child that has just ended keeps its code
                _, status = os.waitpid(pid, 0)
                results[n] = {**_result(status, begin), "timed_out": now >= deadline}
                del started[pid]
        time.sleep(POLL)
    return results


def _result(status: int, begin: float) -> dict[str, Any]:
    return {"returncode": os.waitstatus_to_exitcode(status), "elapsed": time.monotonic() - begin}


def serve() -> None:  # pragma: no cover - runs in the server process
    _warm_imports()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        results = run_commands(
            json.loads(line), lambda pids: print(json.dumps({"pids": pids}), flush=True)
        )
        print(json.dumps(results), flush=True)


def _read(path: str) -> str:
    """A command's output; none when it was killed before it opened the file."""
    found = Path(path)
    return found.read_text(encoding="utf-8", errors="replace") if found.exists() else ""


class ForkServer:
    """The test side: starts the server and sends it commands."""

    def __init__(self, cwd: Path) -> None:
        root = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fault.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        self.cwd = cwd
        self._count = 0
        ready = self._read()
        assert "ready" in ready, ready

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server ended (exit code {self.proc.poll()})")
        return json.loads(line)

    def start(self, commands: Sequence[Command]) -> Started:
        """Start the commands together; their pids (a pid may be killed by the caller)."""
        requests = []
        for one in commands:
            self._count += 1
            out = self.cwd / f"run-{self._count}.out"
            requests.append(
                {
                    "args": list(one.args),
                    "env": one.env,
                    "cwd": str(self.cwd),
                    "out": str(out),
                    "err": str(out.with_suffix(".err")),
                    "kill_after": one.kill_after,
                    "timeout": one.timeout,
                }
            )
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(requests) + "\n")
        self.proc.stdin.flush()
        return Started(requests, self._read()["pids"])

    def wait(self, started: Started) -> list[Outcome]:
        """Wait until each has finished or been killed."""
        outcomes = []
        for request, answer in zip(started.requests, self._read(), strict=True):
            outcomes.append(
                Outcome(
                    returncode=answer["returncode"],
                    killed=answer["returncode"] == -signal.SIGKILL,
                    elapsed=answer["elapsed"],
                    stdout=_read(request["out"]),
                    stderr=_read(request["err"]),
                    timed_out=answer.get("timed_out", False),
                )
            )
        return outcomes

    def run(self, commands: Sequence[Command]) -> list[Outcome]:
        """Start the commands together; wait until each has finished or been killed."""
        return self.wait(self.start(commands))

    def one(self, command: Command) -> Outcome:
        return self.run([command])[0]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass(frozen=True)
class Started:
    requests: list[dict[str, Any]]
    pids: list[int]


@dataclass(frozen=True)
class Command:
    """`dangliang ARGS`, killed `kill_after` seconds after it started (None: never)."""

    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    kill_after: float | None = None
    timeout: float = 600


def command(
    *args: object, kill_after: float | None = None, env: dict[str, str] | None = None
) -> Command:
    """`command("import", path, "--db", url)`: the arguments as text."""
    return Command(tuple(str(a) for a in args), dict(env or {}), kill_after)


@dataclass(frozen=True)
class Outcome:
    returncode: int  # -9 when killed
    killed: bool
    elapsed: float  # seconds from fork to exit
    stdout: str
    stderr: str
    timed_out: bool

    def __repr__(self) -> str:
        return (
            f"Outcome(returncode={self.returncode}, killed={self.killed}, "
            f"elapsed={self.elapsed:.3f}, stdout={self.stdout[-300:]!r}, "
            f"stderr={self.stderr[-600:]!r})"
        )


if __name__ == "__main__":  # pragma: no cover
    serve()
