"""`dangliang payout …` and `dangliang audit …` through the real console script: run,
maker-checker approval, statements read back, replay, diff, and a tampered log caught."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import create_engine, text

from dangliang.application import bootstrap
from dangliang.settings import Settings, parse_db_url
from tests.e2e.test_equivalents_cli import run


def test_runs_statements_replay_and_a_tampered_log(records_url: str, tmp_path: Path) -> None:
    db_url = records_url
    app = bootstrap(Settings(db_url))
    try:
        app.adopt_policy("zhuji", reference="e2e", actor="e2e")
    finally:
        app.close()

    made = run("payout", "run", "--month", "2024-03", "--json", db=db_url)
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    run_id = doc["run_id"]
    assert run_id == "2024-03#1" and doc["state"] == "draft" and len(doc["chain_head"]) == 64

    same_person = run("payout", "approve", run_id, "--reference", "审批单 1", db=db_url)
    assert same_person.returncode == 1 and "maker-checker" in same_person.stderr
    approved = run(
        "payout", "approve", run_id, "--reference", "审批单 1", "--actor", "checker", db=db_url
    )
    assert approved.returncode == 0, approved.stderr
    assert "已审核" in approved.stdout and "approved by checker" in approved.stdout
    again = run("payout", "run", "--month", "2024-03", db=db_url)
    assert again.returncode == 1 and "approved run 2024-03#1" in again.stderr

    xlsx = tmp_path / "2024-03.xlsx"
    written = run("payout", "statement", run_id, "--out", str(xlsx), db=db_url)
    assert written.returncode == 0, written.stderr
    sheet = load_workbook(xlsx).worksheets[0]
    cells = [str(c) for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    assert run_id in cells and str(doc["position"]) in cells and doc["chain_head"] in cells
    c01 = next(r for r in doc["institutions"] if r["code"] == "C01")
    assert any(
        row[0] == "C01"
        and Decimal(str(row[-1])).quantize(Decimal("0.01")) == Decimal(c01["payable"])
        for row in sheet.iter_rows(values_only=True)
    )
    csv_file = tmp_path / "2024-03.csv"
    run("payout", "statement", run_id, "--out", str(csv_file), db=db_url)
    with csv_file.open(encoding="utf-8-sig") as f:
        table = list(csv.reader(f))
    assert table[0][0].startswith("机构编码") and len(table) == len(doc["institutions"]) + 2

    replay = run("audit", "replay", run_id, db=db_url)
    assert replay.returncode == 0, replay.stderr
    assert "identical" in replay.stdout

    listed = run("payout", "list", db=db_url)
    assert run_id in listed.stdout and "已审核" in listed.stdout

    second = json.loads(run("payout", "run", "--month", "2024-04", "--json", db=db_url).stdout)
    diff = run("payout", "diff", run_id, second["run_id"], "--json", db=db_url)
    assert diff.returncode == 0 and json.loads(diff.stdout)["to"]["run_id"] == "2024-04#1"

    intact = run("audit", "verify", db=db_url)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "chain intact" in intact.stdout

    # Tamper with one stored event directly in the database: verify names it.
    target = doc["position"] // 2
    engine = create_engine(Settings(db_url).database.sqlalchemy_url())
    app = bootstrap(Settings(db_url))
    table_name = app.log.events_table
    app.close()
    sqlite = db_url.startswith("sqlite")
    sql = (
        f"UPDATE {table_name} SET state = CAST(state || ' ' AS BLOB) WHERE rowid = {target}"
        if sqlite
        else f"UPDATE {table_name} SET state = state || '\\x20'::bytea "
        f"WHERE notification_id = {target}"
    )
    schema = parse_db_url(db_url).schema
    with engine.begin() as conn:
        if schema:
            conn.execute(text(f'SET search_path TO "{schema}"'))
        assert conn.execute(text(sql)).rowcount == 1
    engine.dispose()
    caught = run("audit", "verify", db=db_url)
    assert caught.returncode == 1
    assert f"#{target} changed" in caught.stdout
