"""Reference data, imports, equivalents, records and the policy in force."""

from __future__ import annotations

import re
import tempfile
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile

from dangliang import __version__
from dangliang.api import models
from dangliang.api.access import Admin, Importer, Reader, Service, require_institution, scoped
from dangliang.api.params import AsOf, InstitutionQuery, PeriodQuery, Position, moment, parse_period
from dangliang.api.refusals import ApiError, ProblemItem
from dangliang.application import INPUT_KINDS, Dangliang
from dangliang.application.accounts import Principal
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.domain.users import ROLES
from dangliang.importers.formats import CORRECTIONS, SERVICES
from dangliang.importers.readers import open_table

router = APIRouter()

ImportKind = Enum(  # type: ignore[misc]
    "ImportKind",
    {
        k.replace("-", "_"): k
        for k in (
            "services",
            "corrections",
            "institutions",
            "headcount",
            "staff",
            "catalogue",
            *INPUT_KINDS,
        )
    },
    type=str,
)
CLERK_KINDS = ("services", "corrections")  # the rest are the bureau's decisions


@router.get("/health", response_model=models.Health, tags=["system"])
def health() -> dict[str, Any]:
    """Liveness (no token needed)."""
    return {"status": "ok", "version": __version__}


@router.get("/me", response_model=models.Me, tags=["system"])
def me(principal: Reader) -> dict[str, Any]:
    """Who the token belongs to, their role and what they can see."""
    return {
        "name": principal.name,
        "role": principal.role,
        "role_label": ROLES[principal.role],
        "institution": principal.institution,
        "scope": sorted(principal.scope) if principal.scope is not None else None,
    }


@router.get("/institutions", response_model=list[models.Institution], tags=["reference"])
def institutions(app: Service, principal: Reader) -> list[dict[str, Any]]:
    """Registered institutions (a clerk sees theirs and its village clinics)."""
    return [
        {"code": code, "kind": kind, "parent_code": parent}
        for code, (kind, parent) in sorted(app.institutions().items())
        if principal.may_see(code)
    ]


@router.post("/imports/{kind}", response_model=models.ImportResult, tags=["imports"])
def upload(
    kind: ImportKind,
    file: Annotated[UploadFile, File(description="CSV, XLSX or JSON lines, as for the CLI.")],
    app: Service,
    principal: Importer,
) -> dict[str, Any]:
    """Import a file (docs/formats.md): every row is checked first; with any problem the
    whole file is refused (422, every problem with row, column and reason) and nothing is
    written. Re-importing the same file changes nothing. A clerk may import service records
    and corrections of their own institution and its village clinics only."""
    name = _safe_name(file.filename, kind.value)
    if principal.role == "clerk" and kind.value not in CLERK_KINDS:
        raise ApiError(
            403,
            f"机构填报员只能导入服务记录与更正（不能导入 {kind.value}）",
            f"a clerk may import services and corrections only, not {kind.value}",
        )
    with tempfile.TemporaryDirectory(prefix="dangliang-upload-") as folder:
        path = Path(folder) / name
        with path.open("wb") as out:
            while chunk := file.file.read(1 << 20):
                out.write(chunk)
        try:
            if principal.role == "clerk":
                _require_rows_in_scope(path, kind.value, principal)
            return _import(app, kind.value, path, principal.name)
        except ProblemsFound as e:  # name the upload, not where it was kept
            raise ProblemsFound([_renamed(p, str(path), name) for p in e.problems]) from None


def _import(app: Dangliang, kind: str, path: Path, actor: str) -> dict[str, Any]:
    if kind == "services":
        r = app.import_services(path, actor=actor, today=date.today())
        return _result(kind, r.file, r.rows, r.inserted, r.already_present, r.summary())
    if kind == "corrections":
        c = app.import_corrections(path, actor=actor, today=date.today())
        done = c.corrected + c.voided
        return _result(kind, c.file, c.rows, done, c.already_applied, c.summary())
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
    return _result(
        kind,
        loaded.file,
        loaded.rows,
        loaded.changed,
        loaded.rows - loaded.changed,
        loaded.summary(),
    )


def _result(
    kind: str, file: str, rows: int, accepted: int, unchanged: int, summary: str
) -> dict[str, Any]:
    return {
        "kind": kind,
        "file": Path(file).name,
        "rows": rows,
        "accepted": accepted,
        "unchanged": unchanged,
        "summary": summary,
    }


def _require_rows_in_scope(path: Path, kind: str, principal: Principal) -> None:
    """Every row of a clerk's file belongs to their institutions; otherwise 403 listing
    each row that does not (the file's other problems are found by the import itself)."""
    fmt = SERVICES if kind == "services" else CORRECTIONS
    outside: list[ProblemItem] = []
    with open_table(path, fmt) as table:
        for row_number, row in table:
            code = (row.get("institution_code") or "").strip()
            if code and not principal.may_see(code):
                outside.append(
                    ProblemItem(
                        file=path.name,
                        row=row_number,
                        column="institution_code",
                        message_zh=f"不属于本机构及其村卫生室：{code}",
                        message_en=f"{code} is not {principal.institution} or its village clinics",
                    )
                )
    if outside:
        raise ApiError(
            403,
            f"文件中有 {len(outside)} 行属于其他机构，未写入任何数据",
            f"{len(outside)} row(s) belong to other institutions; nothing was written",
            outside[:1000],
        )


def _safe_name(filename: str | None, kind: str) -> str:
    """The upload's base name, kept to letters, digits and `._-` (its suffix picks the
    reader: .csv, .xlsx, .jsonl …); `KIND.csv` when it has none."""
    base = Path(filename or "").name
    base = re.sub(r"[^\w.\-]", "_", base).lstrip(".")[:120]
    return base if "." in base else f"{base or kind}.csv"


def _renamed(p: Problem, stored: str, name: str) -> Problem:
    return Problem(
        name if p.file == stored else p.file, p.row, p.column, p.message_zh, p.message_en
    )


@router.get("/equivalents", response_model=models.Equivalents, tags=["equivalents"])
def equivalents(
    app: Service,
    principal: Reader,
    period: PeriodQuery,
    institution: InstitutionQuery = None,
    as_of: AsOf = None,
    position: Position = None,
) -> dict[str, Any]:
    """Workload equivalents (工作当量) per institution for a month or year, now or as the log
    stood at a moment or position."""
    parse_period(period)  # the range check
    if institution is not None:
        require_institution(principal, institution)
    found = app.equivalents(period, as_of=moment(as_of), position=position, institution=institution)
    return scoped(found, principal, institution)


@router.get("/records", response_model=models.Records, tags=["equivalents"])
def records(
    app: Service,
    principal: Reader,
    institution: Annotated[str, Query(max_length=64)],
    period: PeriodQuery,
    item: Annotated[str | None, Query(max_length=64)] = None,
    as_of: AsOf = None,
    position: Position = None,
) -> dict[str, Any]:
    """The service records (HIS source ids) behind an institution's equivalents."""
    require_institution(principal, institution)
    parse_period(period)
    return app.records(institution, period, item=item, as_of=moment(as_of), position=position)


@router.get("/policy", response_model=models.PolicyInForce, tags=["policy"])
def policy(
    app: Service,
    _: Reader,
    on: Annotated[date | None, Query(description="Values in force on this day.")] = None,
    as_of: AsOf = None,
    position: Position = None,
) -> dict[str, Any]:
    """The parameters in force: the adopted bundle plus recorded changes, with references."""
    at = app.resolve_position(as_of=moment(as_of), position=position)
    return app.parameters_in_force(on=on, position=at)


@router.post("/policy/changes", response_model=models.ParameterChange, tags=["policy"])
def change_parameter(
    body: models.ParameterChangeIn, app: Service, principal: Admin
) -> dict[str, Any]:
    """Record a dated change of one parameter (a unit price, the advance ratio…), with its
    reason and approver; the acting user is recorded as the actor."""
    recorded = app.change_parameter(
        body.path,
        body.value,
        start=body.effective_from,
        reason=body.reason,
        approver=body.approver,
        actor=principal.name,
    )
    return {
        "path": body.path,
        "value": body.value,
        "effective_from": body.effective_from,
        "recorded": recorded,
    }
