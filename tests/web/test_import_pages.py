"""The import pages: upload a file, watch its job, read its counts or every problem.

The session's county is shared with the other page tests, so the files uploaded here are
service records of November 2025 with record ids of their own (a period nothing else uses):
each upload writes what it says and changes nothing any other test reads.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from dangliang.application import import_jobs as jobs_module
from dangliang.application.uploads import CLERK_KINDS, IMPORT_KINDS, KIND_LABELS, UploadResult
from tests.web.conftest import PEOPLE, Site

WAIT = 60.0
FRAGMENT = {"Accept": "text/html-fragment"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Spoil = Callable[[int, dict[str, str]], dict[str, str]]


def services_file(
    site: Site, rows: int = 40, *, own: str | None = None, spoil: Spoil | None = None
) -> bytes:
    """`rows` service records of the county (of institution `own` and its clinics, if
    given) as new records of November 2025, by staff still in post; `spoil(i, row)` may
    change the i-th row (its row number in the file is i + 2)."""
    with site.county.files["staff"].open(encoding="utf-8") as f:
        in_post = {r["staff_id"] for r in csv.DictReader(f) if not r["to_date"]}
    tag = uuid.uuid4().hex[:10]
    out = io.StringIO()
    with site.county.files["services"].open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        writer = csv.DictWriter(out, list(reader.fieldnames or []))
        writer.writeheader()
        taken = 0
        for row in reader:
            if row["staff_id"] not in in_post:
                continue
            if own is not None and row["institution_code"][:3] != own:
                continue
            row = dict(
                row, source_id=f"WEB{tag}{taken:05d}", service_date=f"2025-11-{taken % 28 + 1:02d}"
            )
            writer.writerow(spoil(taken, row) if spoil else row)
            taken += 1
            if taken == rows:
                break
    assert taken == rows
    return out.getvalue().encode("utf-8")


def upload(
    site: Site, who: str, name: str, content: bytes, kind: str = "services", **kwargs: Any
) -> Response:
    files = {"file": (name, content, "text/csv")}
    response: Response = site.post(who, "/imports", {"kind": kind}, files=files, **kwargs)
    return response


def job_of(response: Response) -> str:
    assert response.status_code == 303, response.text[:800]
    found = re.fullmatch(r"/imports/([0-9a-f]{32})", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


def fragment(site: Site, who: str, job_id: str) -> Response:
    response: Response = site.client(who).get(f"/imports/{job_id}/status", headers=FRAGMENT)
    return response


def figure(html: str, element_id: str) -> int:
    found = re.search(rf'id="{element_id}" data-value="(\d+)"', html)
    assert found, (element_id, html[:2000])
    return int(found.group(1))


def problems_listed(html: str) -> list[tuple[int, str]]:
    return [
        (int(row), column)
        for row, column in re.findall(r'<tr data-row="(\d+)" data-column="([^"]*)">', html)
    ]


def xlsx_rows(response: Response) -> list[tuple[Any, ...]]:
    book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    return list(book.active.iter_rows(values_only=True))


def recent_ids(site: Site, who: str) -> list[str]:
    page = site.get(who, "/imports")
    assert page.status_code == 200
    return re.findall(r'<tr data-job="([0-9a-f]{32})"', page.text)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Imports report 5 of 10 rows checked, then wait for this event (set it to go on)."""
    go = threading.Event()
    real = jobs_module.import_upload

    def waiting(*args: Any, **kwargs: Any) -> UploadResult:
        kwargs["progress"]("validate", 5, 10)
        assert go.wait(WAIT)
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs_module, "import_upload", waiting)
    yield go
    go.set()


# ---- the main flow, on both backends ------------------------------------------------------


def test_a_clean_file_is_imported_in_the_background_and_a_second_time_writes_nothing(
    site: Site,
) -> None:
    app = site.service
    content = services_file(site, 40)
    name = "十一月 服务记录.csv"
    head = app.log.head()

    job_id = job_of(upload(site, "admin", name, content))
    page = site.get("admin", f"/imports/{job_id}")
    assert page.status_code == 200
    assert name in page.text and "服务记录" in page.text and PEOPLE["admin"] in page.text
    assert 'id="job-status"' in page.text and 'aria-live="polite"' in page.text

    job = app.import_jobs.wait(job_id, WAIT)
    assert job["state"] == "done", job
    status = fragment(site, "admin", job_id)
    assert status.status_code == 200 and "<html" not in status.text
    assert 'data-state="done"' in status.text and "data-finished" in status.text
    result = job["result"]
    assert (result["rows"], result["accepted"], result["unchanged"]) == (40, 40, 0)
    assert figure(status.text, "job-rows") == result["rows"]
    assert figure(status.text, "job-written") == result["accepted"]
    assert figure(status.text, "job-unchanged") == result["unchanged"]
    assert app.log.head() > head

    ended = site.get("admin", f"/imports/{job_id}")  # an ended job's page no longer polls
    assert "data-poll" not in ended.text and figure(ended.text, "job-written") == 40
    assert job_id in recent_ids(site, "admin")

    again = job_of(upload(site, "admin", "again.csv", content))
    assert app.import_jobs.wait(again, WAIT)["state"] == "done"
    status = fragment(site, "admin", again).text
    assert figure(status, "job-rows") == 40
    assert (figure(status, "job-written"), figure(status, "job-unchanged")) == (0, 40)
    assert recent_ids(site, "admin")[:2] == [again, job_id]


# ---- the pages' own behaviour -------------------------------------------------------------


def test_the_upload_form_offers_the_kinds_the_person_may_import(sqlite_site: Site) -> None:
    admin = sqlite_site.get("admin", "/imports")
    assert admin.status_code == 200
    offered = re.findall(r'<option value="([^"]+)"', admin.text)
    assert sorted(offered) == sorted(IMPORT_KINDS)
    assert all(KIND_LABELS[kind] in admin.text for kind in IMPORT_KINDS)
    assert '<input type="file" id="upload-file" name="file"' in admin.text
    for field in ("upload-kind", "upload-file"):
        assert f'<label for="{field}">' in admin.text
    assert 'name="csrf_token"' in admin.text and 'enctype="multipart/form-data"' in admin.text
    assert "docs/formats.md" in admin.text and "GB18030" in admin.text and "XLSX" in admin.text

    clerk = sqlite_site.get("clerk", "/imports")
    assert clerk.status_code == 200
    assert re.findall(r'<option value="([^"]+)"', clerk.text) == list(CLERK_KINDS)
    assert "服务记录" in clerk.text and "更正" in clerk.text


def test_the_job_page_polls_while_the_job_runs(sqlite_site: Site, held: threading.Event) -> None:
    site = sqlite_site
    job_id = job_of(upload(site, "admin", "held.csv", services_file(site, 12)))
    running = fragment(site, "admin", job_id)
    for _ in range(200):  # until the worker has reported its progress
        if 'data-phase="validate"' in running.text:
            break
        threading.Event().wait(0.05)
        running = fragment(site, "admin", job_id)
    page = site.get("admin", f"/imports/{job_id}")
    assert f'data-poll="/imports/{job_id}/status"' in page.text
    assert running.status_code == 200 and "data-finished" not in running.text
    assert 'data-state="running"' in running.text
    assert '<progress id="job-progress" max="10" value="5">' in running.text
    assert '<label for="job-progress"' in running.text and "检查" in running.text
    assert 'data-percent="50"' in running.text

    held.set()
    assert site.service.import_jobs.wait(job_id, WAIT)["state"] == "done"
    ended = fragment(site, "admin", job_id)
    assert "data-finished" in ended.text and figure(ended.text, "job-written") == 12


def test_a_file_with_errors_lists_every_problem_and_downloads_them(sqlite_site: Site) -> None:
    site = sqlite_site
    expected: set[tuple[int, str]] = set()

    def spoil(i: int, row: dict[str, str]) -> dict[str, str]:
        if i % 7 == 3:
            expected.add((i + 2, "quantity"))
            return dict(row, quantity="1,5x")
        if i % 11 == 5:
            expected.add((i + 2, "institution_code"))
            return dict(row, institution_code="ZZ99")
        return row

    content = services_file(site, 40, spoil=spoil)
    head = site.service.log.head()
    job_id = job_of(upload(site, "admin", "bad-services.csv", content))
    job = site.service.import_jobs.wait(job_id, WAIT)
    assert job["state"] == "refused" and job["problem_count"] == len(expected) > 4
    assert site.service.log.head() == head  # nothing written

    page = site.get("admin", f"/imports/{job_id}")
    assert 'data-state="refused"' in page.text and "data-finished" in page.text
    assert "data-poll" not in page.text
    assert 'id="job-problems"' in page.text and "未写入任何数据" in page.text
    assert set(problems_listed(page.text)) == expected
    assert len(problems_listed(page.text)) == len(expected)
    assert figure(page.text, "job-problem-count") == len(expected)
    assert "job-problems-more" not in page.text
    link = f'href="/imports/{job_id}/problems.xlsx" id="job-problems-xlsx"'
    assert link in page.text
    assert set(problems_listed(fragment(site, "admin", job_id).text)) == expected

    download = site.client("admin").get(f"/imports/{job_id}/problems.xlsx")
    assert download.status_code == 200
    assert download.headers["content-type"] == XLSX
    disposition = download.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="bad-services-problems.xlsx"')
    rows = xlsx_rows(download)
    assert rows[0] == ("文件", "行", "列", "问题", "Problem")
    assert len(rows) == 1 + len(expected)
    assert {(r[1], r[2]) for r in rows[1:]} == expected
    assert {r[0] for r in rows[1:]} == {"bad-services.csv"}


def test_more_than_200_problems_are_listed_200_with_a_note_and_downloaded_whole(
    sqlite_site: Site,
) -> None:
    site = sqlite_site
    content = services_file(site, 230, spoil=lambda i, row: dict(row, quantity="-1"))
    job_id = job_of(upload(site, "admin", "服务记录（错）.csv", content))
    job = site.service.import_jobs.wait(job_id, WAIT)
    assert job["state"] == "refused" and job["problem_count"] == 230

    page = site.get("admin", f"/imports/{job_id}")
    assert len(problems_listed(page.text)) == 200
    assert 'id="job-problems-more"' in page.text and "230" in page.text
    download = site.client("admin").get(f"/imports/{job_id}/problems.xlsx")
    assert len(xlsx_rows(download)) == 1 + 230
    disposition = download.headers["content-disposition"]  # a Chinese name, spelt twice
    assert disposition.startswith(f'attachment; filename="import-{job_id[:8]}-problems.xlsx"')
    assert "filename*=UTF-8''%E6%9C%8D" in disposition


def test_a_clerk_uploading_rows_of_another_institution_is_refused_and_nothing_written(
    sqlite_site: Site,
) -> None:
    site = sqlite_site
    content = services_file(site, 60)  # rows of the whole county
    outside = [
        i + 2
        for i, row in enumerate(csv.DictReader(io.StringIO(content.decode("utf-8"))))
        if row["institution_code"][:3] != "C01"
    ]
    assert outside
    head = site.service.log.head()
    job_id = job_of(upload(site, "clerk", "全县.csv", content))
    job = site.service.import_jobs.wait(job_id, WAIT)
    assert job["state"] == "refused"
    assert site.service.log.head() == head

    page = site.get("clerk", f"/imports/{job_id}")
    assert page.status_code == 200 and "属于其他机构" in page.text
    listed = problems_listed(page.text)
    assert [row for row, _ in listed] == outside
    assert {column for _, column in listed} == {"institution_code"}
    assert figure(page.text, "job-problem-count") == len(outside)

    own = job_of(upload(site, "clerk", "本院.csv", services_file(site, 15, own="C01")))
    assert site.service.import_jobs.wait(own, WAIT)["state"] == "done"
    assert figure(fragment(site, "clerk", own).text, "job-written") == 15
    assert recent_ids(site, "clerk")[:2] == [own, job_id]


def test_a_person_sees_only_the_jobs_they_may(sqlite_site: Site) -> None:
    site = sqlite_site
    bad = services_file(site, 5, spoil=lambda i, row: dict(row, quantity="x"))
    admins = job_of(upload(site, "admin", "admin.csv", bad))
    clerks = job_of(upload(site, "clerk", "clerk.csv", services_file(site, 3, own="C01")))
    for job_id in (admins, clerks):
        site.service.import_jobs.wait(job_id, WAIT)

    for who, job_id in (("clerk", admins), ("clerk2", clerks)):
        paths = [f"/imports/{job_id}", f"/imports/{job_id}/status"]
        paths.append(f"/imports/{job_id}/problems.xlsx")
        for path in paths:
            refused = site.get(who, path)
            assert refused.status_code == 403, (who, path)
            assert "只能查看自己的导入任务" in refused.text
        assert fragment(site, who, job_id).status_code == 403
    assert admins not in recent_ids(site, "clerk") and clerks in recent_ids(site, "clerk")
    assert clerks not in recent_ids(site, "clerk2")
    assert {admins, clerks} <= set(recent_ids(site, "admin"))  # the admin sees every job
    assert site.get("admin", f"/imports/{clerks}").status_code == 200

    for path in ("/imports", f"/imports/{admins}", f"/imports/{admins}/status"):
        assert site.get("auditor", path).status_code == 403, path
    assert upload(site, "auditor", "a.csv", bad).status_code == 403
    signed_out = site.anonymous().get("/imports", headers={"Accept": "text/html"})
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/login")


def test_an_upload_without_the_csrf_token_is_refused(sqlite_site: Site) -> None:
    site = sqlite_site
    client: TestClient = site.client("admin")
    before = recent_ids(site, "admin")
    files = {"file": ("x.csv", services_file(site, 3), "text/csv")}
    refused = client.post("/imports", data={"kind": "services"}, files=files)
    assert refused.status_code == 403 and "表单已过期" in refused.text
    forged = client.post("/imports", data={"kind": "services", "csrf_token": "x"}, files=files)
    assert forged.status_code == 403
    assert recent_ids(site, "admin") == before


def test_an_empty_file_or_a_wrong_kind_is_refused_with_a_clear_message(sqlite_site: Site) -> None:
    site = sqlite_site
    before = recent_ids(site, "admin")
    empty = upload(site, "admin", "empty.csv", b"")
    assert empty.status_code == 422
    assert 'id="upload-error"' in empty.text and "文件是空的" in empty.text
    assert 'id="upload-form"' in empty.text  # the form again, to choose another file
    unnamed = site.post("admin", "/imports", {"kind": "services"}, files={"file": ("", b"")})
    assert unnamed.status_code == 422 and 'id="upload-error"' in unnamed.text

    unknown = upload(site, "admin", "x.csv", b"a,b\n1,2\n", kind="salaries")
    assert unknown.status_code == 422 and "未知的导入类型" in unknown.text
    not_theirs = upload(site, "clerk", "staff.csv", b"a,b\n1,2\n", kind="staff")
    assert not_theirs.status_code == 403 and "只能导入服务记录与更正" in not_theirs.text
    assert recent_ids(site, "admin") == before

    assert site.get("admin", "/imports/not-a-job").status_code == 422
    assert site.get("admin", "/imports/" + "0" * 32).status_code == 404
    assert site.get("admin", "/imports/" + "0" * 32 + "/problems.xlsx").status_code == 404
