"""Uploading a file (上传导入): one use case for every kind of file a user can upload, for the
HTTP API and the web workbench alike.

`import_upload(app, kind, path, principal, …)` checks that the user may import this kind
(the bureau's administrator any kind; an institution's clerk service records and
corrections, and only rows of their own institution and its village clinics), imports the
file through the use case of its kind, and names the upload (not where it was kept) in every
problem. A refused file raises `ProblemsFound` with every problem and writes nothing; a user
who may not import it gets `Forbidden` (the API's 403).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from dangliang.application.accounts import Principal
from dangliang.application.core import Progress
from dangliang.application.data_entry import INPUT_KINDS, DataEntry
from dangliang.application.insurance_data import INSURANCE_KINDS, InsuranceData
from dangliang.domain.errors import DomainError
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.importers.formats import CORRECTIONS, SERVICES
from dangliang.importers.readers import open_table


class Importing(DataEntry, InsuranceData):
    """The use-case areas an upload goes through (`Dangliang` is made of them)."""


REFERENCE_LABELS = {
    "services": "服务记录",
    "corrections": "服务记录更正与作废",
    "institutions": "机构",
    "headcount": "核定编制数",
    "staff": "人员",
    "catalogue": "服务项目目录",
}
INPUT_LABELS = {
    "scores": "综合考核得分",
    "income": "医疗服务收入",
    "pay-levels": "在编人均年收入",
    "tasks": "指令性任务",
    "force-majeure": "不可抗力认定",
    "staff-coefficients": "个人考核系数",
    "outside-items": "绩效总量外项目",
    "pools": "绩效工资总量",
    "parameters": "政策参数调整",
}
KIND_LABELS: dict[str, str] = {
    **REFERENCE_LABELS,
    **{kind: INPUT_LABELS[kind] for kind in INPUT_KINDS},
    **INSURANCE_KINDS,
}
"""Every kind a file can be uploaded as (docs/formats.md) → its Chinese label."""
IMPORT_KINDS: tuple[str, ...] = tuple(KIND_LABELS)
CLERK_KINDS = ("services", "corrections")  # the rest are the bureau's decisions


class Forbidden(DomainError):
    """The user may not do this: import this kind of file, import rows of institutions other
    than theirs (`problems` lists those rows), or see another user's import. The API answers
    403."""

    def __init__(self, message_zh: str, message_en: str, problems: Sequence[Problem] = ()):
        super().__init__(message_zh, message_en)
        self.problems = list(problems)


@dataclass(frozen=True)
class UploadResult:
    """What an upload did: rows in the file, rows that recorded something new (`written`)
    and rows the log already had (`unchanged`: a re-import changes nothing)."""

    kind: str
    file: str
    rows: int
    written: int
    unchanged: int
    summary: str

    def as_json(self) -> dict[str, Any]:
        """As the API answers `POST /imports/{kind}` (`written` is called `accepted`)."""
        return {
            "kind": self.kind,
            "file": self.file,
            "rows": self.rows,
            "accepted": self.written,
            "unchanged": self.unchanged,
            "summary": self.summary,
        }


def import_upload(
    app: Importing,
    kind: str,
    path: Path,
    principal: Principal,
    *,
    display_name: str,
    today: date,
    progress: Progress | None = None,
) -> UploadResult:
    """Import the uploaded file at `path` as `kind` (`IMPORT_KINDS`) for `principal`, who is
    recorded as the actor. `display_name` is the name the user knows the file by: problems
    and the result name it instead of `path`. `progress(phase, done, total)` is told how the
    clerk's scope check (`scope`) and a bulk import (`validate`, `write`) advance.

    Raises `ProblemsFound` (every problem; nothing written), `Forbidden` (the role or the
    rows are not the user's) or `DomainError` (an unknown kind)."""
    path = Path(path)
    check_may_import(principal, kind)
    try:
        if principal.role == "clerk":
            _require_rows_in_scope(path, kind, principal, display_name, progress)
        result = _dispatch(app, kind, path, principal.name, today, progress)
    except ProblemsFound as e:
        raise ProblemsFound([_renamed(p, path, display_name) for p in e.problems]) from None
    return replace(
        result, file=display_name, summary=result.summary.replace(str(path), display_name)
    )


def check_may_import(principal: Principal, kind: str) -> None:
    """`DomainError` for an unknown kind; `Forbidden` unless the role may import it."""
    if kind not in KIND_LABELS:
        raise DomainError(
            f"未知的导入类型：{kind}",
            f"unknown import kind {kind!r}; one of {', '.join(IMPORT_KINDS)}",
        )
    if principal.role == "admin":
        return
    if principal.role == "clerk":
        if kind in CLERK_KINDS:
            return
        raise Forbidden(
            f"机构填报员只能导入服务记录与更正（不能导入 {kind}）",
            f"a clerk may import services and corrections only, not {kind}",
        )
    raise Forbidden(
        f"角色 {principal.role} 不能导入文件",
        f"role {principal.role} may not import files",
    )


def safe_name(filename: str | None, kind: str) -> str:
    """The upload's base name, kept to letters, digits and `._-` (its suffix picks the
    reader: .csv, .xlsx, .jsonl …); `KIND.csv` when it has none."""
    base = Path(filename or "").name
    base = re.sub(r"[^\w.\-]", "_", base).lstrip(".")[:120]
    return base if "." in base else f"{base or kind}.csv"


def new_upload_path(filename: str | None, kind: str) -> Path:
    """Where to keep an upload for a background import (`ImportJobs.start`): a new
    `dangliang-upload-` temporary folder and the upload's `safe_name` in it. The job deletes
    both when it is done."""
    return Path(tempfile.mkdtemp(prefix="dangliang-upload-")) / safe_name(filename, kind)


def _dispatch(
    app: Importing, kind: str, path: Path, actor: str, today: date, progress: Progress | None
) -> UploadResult:
    if kind == "services":
        r = app.import_services(path, actor=actor, today=today, progress=progress)
        return UploadResult(kind, r.file, r.rows, r.inserted, r.already_present, r.summary())
    if kind == "corrections":
        c = app.import_corrections(path, actor=actor, today=today)
        done = c.corrected + c.voided
        return UploadResult(kind, c.file, c.rows, done, c.already_applied, c.summary())
    if kind in INSURANCE_KINDS:
        i = app.import_insurance(kind, path, actor=actor, today=today, progress=progress)
        return UploadResult(kind, i.file, i.rows, i.inserted, i.already_present, i.summary())
    loaders = {
        "institutions": app.load_institutions,
        "headcount": app.load_headcount,
        "staff": app.load_staff,
        "catalogue": app.load_catalogue,
    }
    if kind in loaders:
        loaded = loaders[kind](path, actor=actor)
    else:
        loaded = app.load_inputs(kind, path, actor=actor)
    unchanged = loaded.rows - loaded.changed
    return UploadResult(kind, loaded.file, loaded.rows, loaded.changed, unchanged, loaded.summary())


def _require_rows_in_scope(
    path: Path, kind: str, principal: Principal, name: str, progress: Progress | None
) -> None:
    """Every row of a clerk's file belongs to their institutions; otherwise `Forbidden`
    listing each row that does not (the file's other problems are found by the import)."""
    fmt = SERVICES if kind == "services" else CORRECTIONS
    outside: list[Problem] = []
    with open_table(path, fmt) as table:
        for count, (row_number, row) in enumerate(table, 1):
            code = (row.get("institution_code") or "").strip()
            if code and not principal.may_see(code):
                outside.append(
                    Problem(
                        name,
                        row_number,
                        "institution_code",
                        f"不属于本机构及其村卫生室：{code}",
                        f"{code} is not {principal.institution} or its village clinics",
                    )
                )
            if progress is not None and count % 10_000 == 0:
                progress("scope", *table.progress())
        if progress is not None:
            progress("scope", *table.progress())
    if outside:
        raise Forbidden(
            f"文件中有 {len(outside)} 行属于其他机构，未写入任何数据",
            f"{len(outside)} row(s) belong to other institutions; nothing was written",
            outside,
        )


def _renamed(p: Problem, stored: Path, name: str) -> Problem:
    return replace(p, file=name) if p.file in (str(stored), stored.name) else p
