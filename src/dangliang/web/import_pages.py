"""Import (导入): upload a file, watch it being checked and written, then see the counts or
every problem found.

- `GET /imports` (admin, clerk): the upload form (the kinds this person may import: a clerk
  service records and corrections only), notes on the accepted formats (docs/formats.md),
  and the person's recent imports (a clerk: their own).
- `POST /imports` (multipart, CSRF): the upload is copied a megabyte at a time into a fresh
  folder of its own (`uploads.new_upload_path`) and handed to a background job
  (`app.import_jobs`); the answer is a redirect to the job's page at once, never a request
  held open while the file is checked and written. A body over the upload limit
  (`api.upload_limit`, `DANGLIANG_MAX_UPLOAD_MB`) is refused with a 413 page while it
  arrives, before this route runs: no job, no file kept. The form states the limit, and the
  browser refuses a file over it before sending (static/app.js).
- `GET /imports/{job_id}`: the job (file, kind, who, when) and its status; while it is queued
  or running the status is refreshed from its fragment (`data-poll`, static/app.js).
- `GET /imports/{job_id}/status`: that fragment alone; it carries `data-finished` once the
  job has ended (done: the counts; refused: every problem, the first 200 shown; failed or
  interrupted: what to do).
- `GET /imports/{job_id}/problems.xlsx`: every problem as a workbook.

A clerk sees only their own jobs: `import_jobs.status` refuses another user's job
(`Forbidden`, a 403 page), on the page, in the fragment and for the download alike. An
auditor does not import and gets 403 here.
"""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from dangliang.api.upload_limit import shown
from dangliang.application.accounts import Principal
from dangliang.application.data_entry import INPUT_KINDS
from dangliang.application.insurance_data import INSURANCE_KINDS
from dangliang.application.uploads import (
    CLERK_KINDS,
    KIND_LABELS,
    check_may_import,
    new_upload_path,
    safe_name,
)
from dangliang.domain.errors import DomainError
from dangliang.web.guard import IMPORT, Service, form, page
from dangliang.web.rendering import render

router = APIRouter()

Importer = Annotated[Principal, Depends(page(*IMPORT))]
ImporterForm = Annotated[Principal, Depends(form(*IMPORT))]
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="导入任务编号")]

CHUNK = 1 << 20  # bytes copied at a time
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FINAL = ("done", "refused", "failed", "interrupted")
GROUPS = (  # the upload form's kinds, grouped as the bureau thinks of them
    ("服务数据", "Service data", CLERK_KINDS),
    ("基础数据", "Reference data", ("institutions", "headcount", "staff", "catalogue")),
    ("考核与绩效", "Assessment and performance pay", INPUT_KINDS),
    ("医保基金", "Insurance fund", tuple(INSURANCE_KINDS)),
)
STATE_EN = {
    "queued": "queued",
    "running": "importing",
    "done": "done",
    "refused": "refused",
    "failed": "failed",
    "interrupted": "interrupted",
}
PHASE_EN = {"": "", "scope": "checking institutions", "validate": "checking", "write": "writing"}
EMPTY = (
    "所选文件是空的（0 字节），没有可导入的内容；请选择导出的数据文件后重新上传",
    "the chosen file is empty (0 bytes): there is nothing to import; choose the exported "
    "data file and upload it again",
)
NO_FILE = ("请选择要上传的文件", "choose a file to upload")


def may_import(me: Principal, kind: str) -> bool:
    try:
        check_may_import(me, kind)
    except DomainError:
        return False
    return True


def kind_groups(me: Principal) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(group zh, group en, [(kind, label)]) of the kinds `me` may import."""
    groups = []
    for zh, en, kinds in GROUPS:
        shown = [(k, KIND_LABELS[k]) for k in kinds if k in KIND_LABELS and may_import(me, k)]
        if shown:
            groups.append((zh, en, shown))
    return groups


def _context() -> dict[str, Any]:
    return {"state_en": STATE_EN, "phase_en": PHASE_EN, "final": FINAL}


def _upload_form(
    request: Request,
    app: Service,
    me: Principal,
    *,
    status: int = 200,
    error: tuple[str, str] | None = None,
    kind: str = "",
) -> Response:
    return render(
        request,
        "imports/index.html",
        status=status,
        groups=kind_groups(me),
        chosen=kind or "services",
        jobs=app.import_jobs.recent(me),
        error=error,
        max_upload_bytes=request.app.state.max_upload_bytes,
        max_upload=shown(request.app.state.max_upload_bytes),
        **_context(),
    )


@router.get("/imports")
def imports_page(request: Request, app: Service, me: Importer) -> Response:
    return _upload_form(request, app, me)


@router.post("/imports")
def upload(
    request: Request,
    app: Service,
    me: ImporterForm,
    kind: Annotated[str, Form(max_length=40)],
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Keep the upload and start its job; the job's page follows at once (303)."""
    check_may_import(me, kind)  # an unknown kind 422, one this person may not import 403
    if file is None or not file.filename:  # no file chosen
        return _upload_form(request, app, me, status=422, error=NO_FILE, kind=kind)
    if file.size == 0:
        return _upload_form(request, app, me, status=422, error=EMPTY, kind=kind)
    path = new_upload_path(file.filename, kind)
    try:
        written = save(file, path)
    except BaseException:
        discard(path)
        raise
    if written == 0:
        discard(path)
        return _upload_form(request, app, me, status=422, error=EMPTY, kind=kind)
    shown = FilePath(file.filename.replace("\\", "/")).name or safe_name(None, kind)
    job_id = app.import_jobs.start(kind, path, me, display_name=shown, today=date.today())
    return RedirectResponse(f"/imports/{job_id}", status_code=303)


def save(file: UploadFile, path: FilePath) -> int:
    """Copy the upload (spooled to disk by the form parser) to `path`, a megabyte at a time;
    the number of bytes copied."""
    size = 0
    file.file.seek(0)
    with path.open("wb") as out:
        while chunk := file.file.read(CHUNK):
            out.write(chunk)
            size += len(chunk)
    return size


def discard(path: FilePath) -> None:
    """Delete an upload that no job took, with its `dangliang-upload-` folder."""
    if path.parent.name.startswith("dangliang-upload-"):
        shutil.rmtree(path.parent, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@router.get("/imports/{job_id}")
def job_page(request: Request, app: Service, me: Importer, job_id: JobId) -> Response:
    job = app.import_jobs.status(job_id, me)
    return render(request, "imports/job.html", job=job, **_context())


@router.get("/imports/{job_id}/status")
def job_status(request: Request, app: Service, me: Importer, job_id: JobId) -> Response:
    """The status alone, as the job's page polls it (`data-finished` once it has ended)."""
    job = app.import_jobs.status(job_id, me)
    return render(request, "imports/_status.html", job=job, **_context())


@router.get("/imports/{job_id}/problems.xlsx")
def job_problems(request: Request, app: Service, me: Importer, job_id: JobId) -> Response:
    """Every problem of the job (the page shows the first 200): 文件, 行, 列, 问题."""
    job = app.import_jobs.status(job_id, me)
    data = app.import_jobs.problems_xlsx(job_id, me)
    return Response(
        data,
        media_type=XLSX,
        headers={
            "Content-Disposition": attachment(job["file"], job_id),
            "Cache-Control": "no-store",
        },
    )


def attachment(upload_name: str, job_id: str) -> str:
    """`attachment; filename="<upload>-problems.xlsx"`: an ASCII name (the job's id when
    the upload's name is not ASCII) and the upload's own name as `filename*` (RFC 6266)."""
    stem = FilePath(upload_name).stem or "import"
    ascii_stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem) if stem.isascii() else ""
    ascii_stem = ascii_stem.strip("._") or f"import-{job_id[:8]}"
    utf8 = quote(f"{stem}-problems.xlsx", safe="")
    return f"attachment; filename=\"{ascii_stem}-problems.xlsx\"; filename*=UTF-8''{utf8}"
