"""`dangliang backup` and `dangliang restore` on the demo county, on SQLite and PostgreSQL
(the demo's PostgreSQL county lives in a schema of its own): the restored county verifies and
lists the same runs; a target holding events needs --replace; an altered manifest is refused;
a missing or too old pg_dump is named."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PreparedDatabases
from tests.e2e.cli import dangliang
from tests.e2e.conftest import Demo
from tests.e2e.test_equivalents_cli import run


@pytest.fixture
def target(demo: Demo, prepared_databases: PreparedDatabases, tmp_path: Path) -> Iterator[str]:
    """A database to restore into: a new file (SQLite); a new database whose default schema
    holds dangliang's tables and no events (PostgreSQL)."""
    if demo.db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    url = prepared_databases.copy("postgres", "empty", lambda _app: None, True)
    try:
        yield url
    finally:
        prepared_databases.drop(url)


def backed_up(demo: Demo, folder: Path) -> Path:
    """`dangliang backup FOLDER`: the backup file, under its default name."""
    folder.mkdir(exist_ok=True)
    made = run("backup", str(folder), db=demo.db_url)
    assert made.returncode == 0, made.stderr
    assert "已备份 / backed up" in made.stdout and "chain head" in made.stdout
    (found,) = [p for p in folder.iterdir() if not p.name.endswith(".manifest.json")]
    assert found.name.startswith("dangliang-")
    assert found.suffix == (".sqlite" if demo.db_url.startswith("sqlite") else ".pgdump")
    assert found.with_name(found.name + ".manifest.json").is_file()
    return found


def test_a_backup_restores_verified_with_the_same_runs(
    demo: Demo, target: str, tmp_path: Path
) -> None:
    path = backed_up(demo, tmp_path / "backups")

    restored = run("restore", str(path), db=target)

    assert restored.returncode == 0, restored.stderr
    out = restored.stdout
    assert "备份清单 / manifest" in out and "哈希链完整 / chain intact" in out
    assert "已恢复 / restored" in out
    if target.startswith("postgresql"):  # the default schema's empty tables, moved aside
        assert "kept as: schema public_before_restore_" in out
    else:
        assert "kept as" not in out
    assert run("audit", "verify", db=target).returncode == 0
    listed = run("payout", "list", db=target)
    assert listed.returncode == 0 and listed.stdout == run("payout", "list", db=demo.db_url).stdout
    assert "2024#1" in listed.stdout
    replay = run("audit", "replay", "2024#1", db=target)
    assert replay.returncode == 0 and "identical" in replay.stdout

    again = run("restore", str(path), db=target)
    assert again.returncode == 1 and "--replace" in again.stderr

    replaced = run("restore", str(path), "--replace", db=target)
    assert replaced.returncode == 0, replaced.stderr
    assert "the database it replaced is kept as" in replaced.stdout


def test_a_backup_whose_manifest_was_altered_is_refused(
    demo: Demo, target: str, tmp_path: Path
) -> None:
    path = backed_up(demo, tmp_path)
    manifest_file = path.with_name(path.name + ".manifest.json")
    manifest = json.loads(manifest_file.read_text("utf-8"))
    position, digest = manifest["chain_head"].split(":")
    manifest["chain_head"] = f"{position}:{'f' * 64 if digest != 'f' * 64 else '0' * 64}"
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    before = run("status", db=target).stdout if target.startswith("postgresql") else None

    refused = run("restore", str(manifest_file), db=target)

    assert refused.returncode == 1
    assert "restore refused" in refused.stderr and "does not match the log" in refused.stderr
    if before is None:
        assert not Path(target.removeprefix("sqlite:///")).exists()
        assert list(tmp_path.glob("*restoring*")) == []
    else:
        assert run("status", db=target).stdout == before


@pytest.mark.postgres
def test_a_missing_or_old_pg_dump_is_named(
    prepared_databases: PreparedDatabases, tmp_path: Path
) -> None:
    url = prepared_databases.copy("postgres", "empty", lambda _app: None, True)
    try:
        empty = tmp_path / "no-tools"
        empty.mkdir()
        missing = run_with_path("backup", str(tmp_path / "a.pgdump"), db=url, path=empty)
        assert missing.returncode == 2
        assert "pg_dump" in missing.stderr and "not on PATH" in missing.stderr

        old = tmp_path / "old-tools"
        old.mkdir()
        fake = old / "pg_dump"
        fake.write_text('#!/bin/sh\necho "pg_dump (PostgreSQL) 9.6.24"\n', encoding="utf-8")
        fake.chmod(0o755)
        too_old = run_with_path("backup", str(tmp_path / "b.pgdump"), db=url, path=old)
        assert too_old.returncode == 2
        assert "older than the server" in too_old.stderr and "比数据库服务器" in too_old.stderr
        assert not list(tmp_path.glob("*.pgdump*"))  # nothing half written is left
    finally:
        prepared_databases.drop(url)


def run_with_path(*args: str, db: str, path: Path) -> subprocess.CompletedProcess[str]:
    """`dangliang ARGS --db DB` with nothing but `path` on PATH."""
    return dangliang(*args, "--db", db, env={"PATH": str(path), "DANGLIANG_ACTOR": "e2e"})


def test_a_path_ending_in_a_slash_is_a_folder_made_for_the_backup(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dangliang.application import bootstrap
    from dangliang.cli.main import main as cli
    from dangliang.settings import Settings

    db = f"sqlite:///{tmp_path / 'county.db'}"
    bootstrap(Settings(db)).close()  # an empty county: its tables, no events
    made = CliRunner().invoke(cli, ["--db", db, "backup", f"{tmp_path / 'backups'}/"])
    assert made.exit_code == 0, made.output
    inside = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert len(inside) == 2 and inside[0].endswith(".sqlite") and inside[1].endswith(".json")
