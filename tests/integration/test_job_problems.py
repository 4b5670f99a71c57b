"""A web import job's problems are rows of their own (`application.job_problems`), on SQLite
and PostgreSQL: written with the job's end a chunk at a time, read back in report order (the
first few for a status, every one for the workbook), and a job that ended before the table
existed still shows the problems its row kept as JSON."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from dangliang.application import Dangliang
from dangliang.application import job_problems as store
from dangliang.application.import_jobs import jobs_table
from dangliang.demo.generator import GeneratedCounty
from tests.integration.test_import_jobs import WAIT, spoil_a_tenth, staged
from tests.integration.test_uploads import ADMIN, TODAY, rewrite


@pytest.fixture
def app(reference_app: Dangliang) -> Dangliang:
    return reference_app


def sheet_rows(app: Dangliang, job: str) -> list[tuple[object, ...]]:
    book = openpyxl.load_workbook(io.BytesIO(app.import_jobs.problems_xlsx(job, ADMIN)))
    return [row for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)][1:]


def test_a_refused_jobs_problems_are_rows_in_report_order(
    app: Dangliang, county: GeneratedCounty, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "WRITE_CHUNK", 7)  # many statements, a last one part-full
    monkeypatch.setattr(store, "READ_CHUNK", 5)
    bad = rewrite(county.files["services"], tmp_path / "bad.csv", spoil_a_tenth)
    job = app.import_jobs.start(
        "services", staged(bad, "bad.csv"), ADMIN, display_name="bad.csv", today=TODAY
    )
    found = app.import_jobs.wait(job, WAIT)
    count = found["problem_count"]
    assert found["state"] == "refused" and count > 200

    t = store.problems_table
    with app.engine.connect() as conn:
        stored = conn.execute(
            select(func.count(), func.min(t.c.seq), func.max(t.c.seq)).where(t.c.job_id == job)
        ).one()
        kept_json = conn.execute(
            select(jobs_table.c.problems_json).where(jobs_table.c.id == job)
        ).scalar_one()
    assert tuple(stored) == (count, 0, count - 1) and kept_json is None
    rows = sheet_rows(app, job)
    assert len(rows) == count
    shown = [(p["file"], p["row"], p["column"], p["message_zh"]) for p in found["problems"]]
    assert shown == [row[:4] for row in rows[:200]]  # the status: the first 200, in order


def test_a_job_that_ended_before_the_table_shows_the_problems_its_row_kept(
    app: Dangliang,
) -> None:
    old = [
        ["services.csv", 2, "institution_code", "未知机构编码：'ZZ99'", "unknown institution"],
        ["services.csv", 5, "quantity", "数量必须大于 0", "quantity must be positive"],
    ]
    now = datetime.now(UTC)
    with app.write_engine.begin() as conn:
        conn.execute(
            jobs_table.insert().values(
                id="0" * 32,
                kind="services",
                file_name="services.csv",
                actor=ADMIN.name,
                state="refused",
                phase="validate",
                created_at=now,
                updated_at=now,
                finished_at=now,
                problems_json=json.dumps(old, ensure_ascii=False),
                problem_count=2,
            )
        )
    status = app.import_jobs.status("0" * 32, ADMIN)
    assert [
        [p["file"], p["row"], p["column"], p["message_zh"], p["message_en"]]
        for p in status["problems"]
    ] == old
    assert sheet_rows(app, "0" * 32) == [tuple(p) for p in old]
