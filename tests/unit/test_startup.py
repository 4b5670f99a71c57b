"""Every `dangliang` command pays for what the package imports at start: the libraries only
some commands use (polars for an import's column-wise checks, openpyxl for spreadsheets,
WeasyPrint for PDFs, PostgreSQL's driver for a PostgreSQL database) are imported where they
are used, not at start."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

LATE = ("polars", "openpyxl", "weasyprint", "psycopg", "eventsourcing.postgres")


def test_starting_the_command_line_imports_none_of_the_heavy_optional_libraries() -> None:
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, dangliang.cli.main; "
            f"print(','.join(m for m in {LATE!r} if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == ""


def test_an_import_still_checks_its_columns_with_polars() -> None:
    from dangliang.importers.services import service_spec
    from dangliang.projections.registry import Registry

    spec = service_spec(Registry())
    assert spec.fast is not None
    columns = spec.fast(date(2024, 12, 31))
    assert type(columns).__module__ == "dangliang.importers.service_columns"
    assert "polars" in sys.modules


def test_a_sqlite_log_opens_and_appends_without_postgresql_s_driver(tmp_path: object) -> None:
    script = (
        "import sys\n"
        "from dangliang.application import bootstrap\n"
        "from dangliang.settings import Settings\n"
        f"app = bootstrap(Settings('sqlite:///{tmp_path}/county.db'))\n"
        "app.users.add('局管理员', role='admin', institution=None, actor='tester')\n"
        "assert app.log.head() > 0\n"
        "app.close()\n"
        "print(','.join(m for m in ('psycopg', 'eventsourcing.postgres') if m in sys.modules))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == ""
