"""Running `dangliang ARGS` for the end-to-end tests.

By default a command runs in this process through click's test runner: the same `main`, the
same arguments, environment variables, exit code, standard output and standard error as the
console script, without paying a new interpreter and its imports (~0.8 s) for every command.
`DANGLIANG_E2E_SUBPROCESS=1` runs every command through the real console script instead.
The console script itself, as an installed program, is exercised by tests/e2e/test_cli.py,
by the server test (`dangliang serve`) and by the concurrency tests, which always start it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from click.testing import CliRunner

from dangliang.cli.main import main
from tests.conftest import DANGLIANG_CLI

SUBPROCESS = os.environ.get("DANGLIANG_E2E_SUBPROCESS", "").lower() in ("1", "true", "yes")


def dangliang(
    *args: str,
    env: Mapping[str, str | None] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    console_script: bool = SUBPROCESS,
) -> subprocess.CompletedProcess[str]:
    """`dangliang ARGS` in `cwd`, with `env` changing the environment (None removes a
    variable): exit code, stdout and stderr. `console_script` runs the installed program."""
    changes = dict(env or {})
    if console_script:
        environment = {**os.environ, **changes, "PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8"}
        return subprocess.run(
            [DANGLIANG_CLI, *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            cwd=cwd,
            env={k: v for k, v in environment.items() if v is not None},
            timeout=timeout,
        )
    with contextlib.chdir(cwd or Path.cwd()):
        result = CliRunner().invoke(
            main, list(args), env=changes, prog_name="dangliang", catch_exceptions=False
        )
    return subprocess.CompletedProcess(
        ["dangliang", *args], result.exit_code, result.stdout, result.stderr
    )
