"""Helpers shared by the benchmark scripts in this folder (standard library + psycopg only).

Imported as `from common import ...`: running `python benchmarks/x.py` puts `benchmarks/` first
on sys.path.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------------
# logging and formatting


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def fmt_rate(x: float) -> str:
    return "n/a" if x != x else f"{x:,.0f}"


def fmt_s(x: float) -> str:
    return "n/a" if x != x else f"{x:.2f}"


def fmt_spread(xs: Sequence[float], f: Callable[[float], str]) -> str:
    if len(xs) < 2:
        return ""
    return f"{f(min(xs))} – {f(max(xs))}"


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Sequence[bool] | None = None,
    *,
    markdown: bool = False,
) -> str:
    """A fixed-width table. right[i]: right-align column i (default: the first column left, the
    others right). Plain: indented two spaces, columns two spaces apart, a dashed rule, trailing
    blanks stripped. markdown: a `| a | b |` table with a `|---|---|` rule."""
    if right is None:
        right = [i > 0 for i in range(len(headers))]
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        out = [
            str(c).rjust(widths[i]) if right[i] else str(c).ljust(widths[i])
            for i, c in enumerate(cells)
        ]
        if markdown:
            return "| " + " | ".join(out) + " |"
        return "  " + "  ".join(out).rstrip()

    if markdown:
        sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    else:
        sep = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


# --------------------------------------------------------------------------------------------
# the CLI, the machine, the code


def dangliang_command() -> list[str]:
    """The real console script of the venv this script runs in (else `python -m`)."""
    exe = Path(sys.executable).parent / "dangliang"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("dangliang")
    if found:
        return [found]
    return [sys.executable, "-m", "dangliang"]


def machine_info(extra: dict[str, str] | None = None) -> dict[str, str]:
    """CPU count and model, RAM, Python and SQLite versions, then `extra` in its own order."""
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus (nproc)": str(os.cpu_count()),
        "cpu": cpu,
        "ram": mem,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        **(extra or {}),
    }


def git_describe(*, list_files: bool = True) -> str:
    """Short HEAD, plus a note when src/ has uncommitted changes (naming the files unless
    list_files is false); "unknown" outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "--no-optional-locks", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--", "src"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        changed = [line[3:] for line in dirty if line.strip()]
        if not changed:
            return head
        return head + (
            f" + uncommitted changes in {', '.join(changed)}"
            if list_files
            else " + uncommitted changes in src/"
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# --------------------------------------------------------------------------------------------
# databases


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(str(path) + suffix).unlink()


def pg_connect(base_url: str, schema: str | None = None, **kw: Any) -> Any:
    """psycopg connection (5 s connect timeout); schema: set as the search_path."""
    import psycopg

    if schema:
        kw["options"] = f"-csearch_path={schema}"
    return psycopg.connect(base_url, connect_timeout=5, **kw)


def pg_version(base_url: str) -> str | None:
    try:
        with pg_connect(base_url, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else None
    except Exception as e:  # unreachable, no driver, auth …
        log(f"PostgreSQL unreachable at {base_url}: {e}")
        return None


def pg_drop_schema(base_url: str, schema: str) -> None:
    with pg_connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
