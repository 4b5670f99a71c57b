"""A database written before the packages were regrouped opens, verifies and replays with
today's code: no stored event, topic or read model changed meaning (see
tests/fixtures/pre_regroup/README.md for how the database was made)."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.utils import get_topic

from dangliang.application import Dangliang, bootstrap
from dangliang.domain.problems import ProblemsFound
from dangliang.domain.service import ServiceRecord
from dangliang.ledger.compact import SERVICE_RECORD_TOPIC
from dangliang.projections import equivalents as eq
from dangliang.settings import Settings
from tests.conftest import DANGLIANG_CLI

FIXTURE = Path(__file__).parent.parent / "fixtures" / "pre_regroup"
HEAD = 3847  # the log as the old code left it
RUNS = 15  # twelve advances, the settlement, the distribution (paid), a draft for 2025-01


def unpacked(packed_db: Path, folder: Path) -> str:
    """The URL of a copy of a gzipped SQLite database (a fixture written by older code)."""
    path = folder / packed_db.name.removesuffix(".gz")
    with gzip.open(packed_db) as packed, path.open("wb") as out:
        shutil.copyfileobj(packed, out)
    return f"sqlite:///{path}"


@pytest.fixture
def old_database(tmp_path: Path) -> str:
    return unpacked(FIXTURE / "pre_regroup.db.gz", tmp_path)


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


def test_the_old_log_takes_a_compact_import_and_reads_both_forms(
    old_app: Dangliang, tmp_path: Path
) -> None:
    """Records imported before the compact form keep their long form; a new import writes the
    compact form beside them. A file repeating old records finds them already present (the
    facts are compared across forms), one changing an old record is refused, and the
    equivalents count both forms — incrementally and after a rebuild from the log."""
    app = old_app
    recorded = get_topic(ServiceRecord.Recorded)
    old = [
        app.log.mapper.to_domain_event(n)
        for n in app.log.app_recorder.select_notifications(1, HEAD, topics=[recorded])
    ]
    assert len(old) == 200
    rows = [_row(e, e.source_id) for e in old[:40]]  # already in the log, in the long form
    new = [_row(e, f"NEW-{n}") for n, e in enumerate(old[40:100])]  # new records
    path = tmp_path / "mixed.csv"
    _write(path, rows + new)
    before = _totals(app)

    result = app.import_services(path, actor="upgrade", today=date(2025, 6, 30))
    assert (result.inserted, result.already_present, result.rejected) == (60, 40, 0)
    compact = app.log.app_recorder.select_notifications(HEAD, 10_000, topics=[SERVICE_RECORD_TOPIC])
    assert len(compact) == 60
    assert {n.state[:1] for n in compact} == {b"["}

    assert_added_and_rebuilt(app, before, new)

    changed = [dict(rows[0], quantity=str(Decimal(rows[0]["quantity"]) + 1))]
    _write(tmp_path / "changed.csv", changed)
    with pytest.raises(ProblemsFound) as caught:
        app.import_services(tmp_path / "changed.csv", actor="upgrade", today=date(2025, 6, 30))
    assert [p.column for p in caught.value.problems] == ["source_id"]


def assert_added_and_rebuilt(
    app: Dangliang, before: dict[str, Decimal], new: list[dict[str, str]]
) -> None:
    """The cube grew by exactly the new rows' quantities, the chain verifies, and a rebuild
    from the log gives the same cube."""
    after = _totals(app)
    added: dict[str, Decimal] = {}
    for r in new:
        key = f"{r['institution_code']}|{r['service_date'][:7]}|{r['item_code']}"
        added[key] = added.get(key, Decimal(0)) + Decimal(r["quantity"])
    assert {
        k: after[k] - before.get(k, Decimal(0)) for k in after if after[k] != before.get(k)
    } == (added)
    assert app.verify_log()["ok"]
    app.rebuild()
    assert _totals(app) == after


def _row(e: Any, source_id: str) -> dict[str, str]:
    return {
        "source_id": source_id,
        "institution_code": e.institution_code,
        "staff_id": e.staff_id,
        "item_code": e.item_code,
        "quantity": str(e.quantity),
        "service_date": e.service_date.isoformat(),
        "patient_ref": e.patient_ref or "",
        "compliant": "true" if e.compliant else "false",
    }


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _totals(app: Dangliang) -> dict[str, Decimal]:
    """Quantity per institution × month × item, from the cube (both forms in it)."""
    app.catch_up()
    projection = app.equivalents_projection()
    totals: dict[str, Decimal] = {}
    with app.engine.connect() as conn:
        for inst, _staff, item, month, _c, q_e4, _n in eq.cube_rows(conn, projection.t):
            key = f"{inst}|{month}|{item}"
            totals[key] = totals.get(key, Decimal(0)) + Decimal(q_e4) / 10_000
    return {k: v for k, v in totals.items() if v}
