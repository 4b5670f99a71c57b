"""Background imports (`application.import_jobs.ImportJobs`, `app.import_jobs`), on SQLite and
on PostgreSQL: progress, the outcome (counts or every problem), the problems as XLSX, who
sees which job, and a job a stopped process left behind."""

from __future__ import annotations

import io
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from freezegun import freeze_time

from dangliang.application import Dangliang
from dangliang.application import import_jobs as jobs_module
from dangliang.application.import_jobs import ImportJobs
from dangliang.application.uploads import (
    Forbidden,
    UploadResult,
    import_upload,
    new_upload_path,
)
from dangliang.demo.generator import GeneratedCounty
from dangliang.domain.errors import NotFound
from dangliang.domain.problems import ProblemsFound
from tests.integration.test_uploads import ADMIN, TODAY, clerk_of, rewrite

WAIT = 120.0


def staged(source: Path, filename: str, kind: str = "services") -> Path:
    """The upload as the web workbench keeps it for a job."""
    path = new_upload_path(filename, kind)
    shutil.copyfile(source, path)
    return path


def spoil_a_tenth(row: dict[str, str]) -> dict[str, str]:
    return dict(row, institution_code="ZZ99") if row["source_id"].endswith("7") else row


@pytest.fixture
def app(reference_app: Dangliang) -> Dangliang:
    return reference_app


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Imports wait for this event before they start (set it to let them go)."""
    go = threading.Event()
    real = jobs_module.import_upload

    def waiting(*args: Any, **kwargs: Any) -> UploadResult:
        assert go.wait(WAIT)
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs_module, "import_upload", waiting)
    yield go
    go.set()


def test_a_clean_file_is_done_with_its_counts_and_progress_along_the_way(
    app: Dangliang, county: GeneratedCounty, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = app.import_jobs
    seen: list[dict[str, Any]] = []
    real = jobs_module.import_upload

    def watched(*args: Any, **kwargs: Any) -> UploadResult:
        report = kwargs["progress"]

        def progress(phase: str, done: int, total: int) -> None:
            report(phase, done, total)
            if len(seen) < 3:  # what a user polling the job sees at that moment
                seen.append(jobs.recent(ADMIN, limit=1)[0])

        return real(*args, **dict(kwargs, progress=progress))

    monkeypatch.setattr(jobs_module, "import_upload", watched)
    path = staged(county.files["services"], "三月 服务.csv")
    job = jobs.start("services", path, ADMIN, display_name="三月 服务.csv", today=TODAY)

    found = jobs.wait(job, WAIT)
    assert found["state"] == "done", found
    assert found["result"] == {
        "kind": "services",
        "file": "三月 服务.csv",
        "rows": 3_000,
        "accepted": 3_000,
        "unchanged": 0,
        "summary": found["result"]["summary"],
    }
    assert (found["percent"], found["problem_count"], found["problems"]) == (100, 0, [])
    assert (found["phase"], found["done"], found["total"]) == ("write", 3_000, 3_000)
    assert found["kind_label"] == "服务记录" and found["finished_at"]
    assert seen and seen[0]["state"] == "running" and seen[0]["phase"] == "validate"
    assert seen[0]["total"] > 0 and 0 <= seen[0]["percent"] <= 100
    assert not path.exists() and not path.parent.exists()  # the job's file is gone

    again = jobs.start(
        "services",
        staged(county.files["services"], "a.csv"),
        ADMIN,
        display_name="a.csv",
        today=TODAY,
    )
    result = jobs.wait(again, WAIT)["result"]
    assert (result["accepted"], result["unchanged"]) == (0, 3_000)
    assert [j["id"] for j in jobs.recent(ADMIN)] == [again, job]


def test_a_bad_file_is_refused_with_every_problem_also_as_xlsx(
    app: Dangliang, county: GeneratedCounty, tmp_path: Path
) -> None:
    jobs = app.import_jobs
    bad = rewrite(county.files["services"], tmp_path / "bad.csv", spoil_a_tenth)
    head = app.log.head()
    name = "=HYPERLINK(1).csv"  # a name that would be a formula in a spreadsheet cell
    job = jobs.start("services", staged(bad, "bad.csv"), ADMIN, display_name=name, today=TODAY)

    found = jobs.wait(job, WAIT)
    assert found["state"] == "refused" and found["result"] is None
    assert "nothing was written" in found["message_en"] and "未写入" in found["message_zh"]
    count = found["problem_count"]
    assert count > 200 and len(found["problems"]) == 200
    first = found["problems"][0]
    assert (first["file"], first["column"]) == (name, "institution_code")
    assert app.log.head() == head

    book = openpyxl.load_workbook(io.BytesIO(jobs.problems_xlsx(job, ADMIN)))
    sheet = book.active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("文件", "行", "列", "问题", "Problem")
    assert all(cell.font.b for cell in sheet[1])
    assert len(rows) == 1 + count
    assert sheet["A2"].data_type == "s" and sheet["A2"].value == name  # text, no formula
    with pytest.raises(ProblemsFound) as direct:  # the same file, imported in the request
        import_upload(app, "services", bad, ADMIN, display_name=name, today=TODAY)
    every = [(p.file, p.row, p.column, p.message_zh, p.message_en) for p in direct.value.problems]
    assert rows[1:] == every
    assert found["problems"] == [p.as_dict() for p in direct.value.problems[:200]]


def test_more_problems_than_a_sheet_holds_go_on_to_further_sheets(
    app: Dangliang, county: GeneratedCounty, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spreadsheet holds 1,048,576 rows: past that, the problems go on in a second sheet
    (and a third…), each with its header; read in order they are every problem."""
    monkeypatch.setattr(jobs_module, "SHEET_PROBLEMS", 100)
    jobs = app.import_jobs
    bad = rewrite(county.files["services"], tmp_path / "bad.csv", spoil_a_tenth)
    job = jobs.start("services", staged(bad, "bad.csv"), ADMIN, display_name="bad.csv", today=TODAY)
    count = jobs.wait(job, WAIT)["problem_count"]
    assert count > 200

    book = openpyxl.load_workbook(io.BytesIO(jobs.problems_xlsx(job, ADMIN)))
    sheets = -(-count // 100)
    assert book.sheetnames == ["问题 Problems"] + [
        f"问题 Problems {n}" for n in range(2, sheets + 1)
    ]
    rows = []
    for sheet in book.worksheets:
        found = list(sheet.iter_rows(values_only=True))
        assert found[0] == ("文件", "行", "列", "问题", "Problem")
        assert 1 <= len(found) - 1 <= 100
        rows += found[1:]
    assert len(rows) == count
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)  # in the file's row order


def test_a_clerk_sees_their_own_jobs_only(
    app: Dangliang, county: GeneratedCounty, tmp_path: Path
) -> None:
    jobs = app.import_jobs
    clerk, other = clerk_of(app, "C01"), clerk_of(app, "C02")
    bureau = jobs.start(
        "institutions", staged(county.files["institutions"], "i.csv", "institutions"), ADMIN,
        display_name="i.csv", today=TODAY,
    )  # fmt: skip
    own_rows = rewrite(
        county.files["services"],
        tmp_path / "c01.csv",
        lambda r: r if r["institution_code"][:3] == "C01" else None,
    )
    own = jobs.start("services", staged(own_rows, "c01.csv"), clerk, display_name="c01.csv",
                     today=TODAY)  # fmt: skip
    assert jobs.wait(bureau, WAIT)["state"] == "done"
    assert jobs.wait(own, WAIT)["result"]["accepted"] > 0

    with pytest.raises(Forbidden):
        jobs.status(bureau, clerk)
    with pytest.raises(Forbidden):
        jobs.problems_xlsx(bureau, clerk)
    with pytest.raises(Forbidden):
        jobs.status(own, other)
    assert jobs.status(own, clerk)["actor"] == clerk.name
    assert jobs.status(own, ADMIN)["state"] == "done"
    assert [j["id"] for j in jobs.recent(clerk)] == [own]
    assert jobs.recent(other) == []
    assert {j["id"] for j in jobs.recent(ADMIN)} == {own, bureau}
    with pytest.raises(NotFound):
        jobs.status("0" * 32, ADMIN)

    # A clerk's file with another institution's rows: refused with those rows.
    mixed = jobs.start("services", staged(county.files["services"], "all.csv"), clerk,
                       display_name="all.csv", today=TODAY)  # fmt: skip
    refused = jobs.wait(mixed, WAIT)
    assert refused["state"] == "refused" and refused["problem_count"] > 0
    assert "belong to other institutions" in refused["message_en"]
    assert refused["problems"][0]["column"] == "institution_code"

    # A kind the clerk may not import is refused at once, and its file removed.
    path = staged(county.files["staff"], "staff.csv", "staff")
    with pytest.raises(Forbidden):
        jobs.start("staff", path, clerk, display_name="staff.csv", today=TODAY)
    assert not path.exists()


def test_a_job_left_by_a_stopped_process_is_interrupted(
    app: Dangliang, county: GeneratedCounty, held: threading.Event
) -> None:
    path = staged(county.files["institutions"], "i.csv", "institutions")
    job = app.import_jobs.start("institutions", path, ADMIN, display_name="i.csv", today=TODAY)
    elsewhere = ImportJobs(app)  # another process, which does not run the job
    try:
        assert elsewhere.status(job, ADMIN)["state"] in ("queued", "running")
        with freeze_time(datetime.now(UTC) + timedelta(seconds=121)):
            stale = elsewhere.status(job, ADMIN)
            assert app.import_jobs.status(job, ADMIN)["state"] in ("queued", "running")
        assert stale["state"] == "interrupted"
        assert "upload the file again" in stale["message_en"] and "重新上传" in stale["message_zh"]
        held.set()
        assert app.import_jobs.wait(job, WAIT)["state"] == "done"
    finally:
        elsewhere.close()


def test_closing_waits_for_the_running_job_and_interrupts_the_queued_ones(
    app: Dangliang, county: GeneratedCounty, held: threading.Event
) -> None:
    jobs = ImportJobs(app)
    first_path = staged(county.files["institutions"], "i.csv", "institutions")
    first = jobs.start("institutions", first_path, ADMIN, display_name="i.csv", today=date.today())
    path = staged(county.files["headcount"], "h.csv", "headcount")
    queued = jobs.start("headcount", path, ADMIN, display_name="h.csv", today=date.today())
    threading.Timer(0.3, held.set).start()
    jobs.close()
    assert jobs.status(first, ADMIN)["state"] == "done"
    assert jobs.status(queued, ADMIN)["state"] == "interrupted"
    assert not path.exists() and not first_path.exists()
    with pytest.raises(RuntimeError):
        jobs.start("headcount", staged(county.files["headcount"], "h.csv", "headcount"),
                   ADMIN, display_name="h.csv", today=date.today())  # fmt: skip
