"""A database written before the packages were regrouped opens, verifies and replays with
today's code: no stored event, topic or read model changed meaning (see
tests/fixtures/pre_regroup/README.md for how the database was made)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dangliang.application import Dangliang, bootstrap
from dangliang.settings import Settings
from tests.conftest import DANGLIANG_CLI

FIXTURE = Path(__file__).parent.parent / "fixtures" / "pre_regroup"
HEAD = 3847  # the log as the old code left it
RUNS = 15  # twelve advances, the settlement, the distribution (paid), a draft for 2025-01


@pytest.fixture
def old_database(tmp_path: Path) -> str:
    path = tmp_path / "pre_regroup.db"
    with gzip.open(FIXTURE / "pre_regroup.db.gz") as packed, path.open("wb") as out:
        shutil.copyfileobj(packed, out)
    return f"sqlite:///{path}"


@pytest.fixture
def old_app(old_database: str) -> Iterator[Dangliang]:
    app = bootstrap(Settings(old_database))
    yield app
    app.close()


def cli_json(db_url: str, *args: str) -> str:
    done = subprocess.run(
        [DANGLIANG_CLI, *args, "--json", "--db", db_url], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_chain_verifies_and_every_run_replays_to_the_fen(old_app: Dangliang) -> None:
    verified = old_app.verify_log()
    assert verified["ok"], verified["lines"]
    assert (verified["checked"], verified["runs_checked"]) == (HEAD, RUNS)

    runs = old_app.payout_runs()
    assert len(runs) == RUNS
    assert {r.state for r in runs.values()} == {"paid", "draft"}
    for run_id in runs:
        replay = old_app.replay_payout(run_id)
        assert replay["identical"], (run_id, replay["differences"])


def test_read_models_rebuilt_from_the_old_log_print_what_the_old_code_printed(
    old_database: str,
) -> None:
    expected_equivalents = (FIXTURE / "equivalents_2024.json").read_text("utf-8")
    expected_settlement = gzip.decompress((FIXTURE / "compute_2024.json.gz").read_bytes()).decode(
        "utf-8"
    )

    assert cli_json(old_database, "equivalents", "--period", "2024") == expected_equivalents
    app = bootstrap(Settings(old_database))
    try:
        assert app.rebuild() == HEAD
    finally:
        app.close()
    assert cli_json(old_database, "equivalents", "--period", "2024") == expected_equivalents
    assert cli_json(old_database, "compute", "--year", "2024") == expected_settlement
    assert json.loads(expected_settlement)["position"] == HEAD


def test_the_old_log_takes_new_events(old_app: Dangliang) -> None:
    """Appending after the regroup continues the same log and the same chain."""
    run = old_app.reject_payout("2025-01#1", reason="升级检查 upgrade check", actor="auditor")
    assert run.state == "rejected"
    assert old_app.log.head() == HEAD + 1
    assert old_app.verify_log()["ok"]
