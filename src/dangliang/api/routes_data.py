"""Reference data, imports, equivalents, records and the policy in force."""

from __future__ import annotations

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
from dangliang.api.refusals import UPLOAD_RESPONSES, ApiError, ProblemItem
from dangliang.application import INSURANCE_KINDS
from dangliang.application.uploads import (
    IMPORT_KINDS,
    Forbidden,
    check_may_import,
    import_upload,
    safe_name,
)
from dangliang.domain.users import ROLES

router = APIRouter()

ImportKind = Enum(  # type: ignore[misc]
    "ImportKind",
    {k.replace("-", "_"): k for k in IMPORT_KINDS if k not in INSURANCE_KINDS},
    type=str,
)  # the fund's kinds are uploaded at /insurance/imports/{kind}


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


@router.post(
    "/imports/{kind}",
    response_model=models.ImportResult,
    tags=["imports"],
    responses=UPLOAD_RESPONSES,
)
def upload(
    kind: ImportKind,
    file: Annotated[UploadFile, File(description="CSV, XLSX or JSON lines, as for the CLI.")],
    app: Service,
    principal: Importer,
) -> dict[str, Any]:
    """Import a file (docs/formats.md): every row is checked first; with any problem the
    whole file is refused (422, every problem with row, column and reason) and nothing is
    written. Re-importing the same file changes nothing. A clerk may import service records
    and corrections of their own institution and its village clinics only. A body over the
    upload limit (`DANGLIANG_MAX_UPLOAD_MB`, 512 MB unless set) is refused with 413 as it
    arrives, before anything is imported."""
    name = safe_name(file.filename, kind.value)
    try:
        check_may_import(principal, kind.value)
        with tempfile.TemporaryDirectory(prefix="dangliang-upload-") as folder:
            path = save_upload(file, Path(folder) / name)
            found = import_upload(
                app, kind.value, path, principal, display_name=name, today=date.today()
            )
    except Forbidden as e:
        raise forbidden(e) from None
    return found.as_json()


def save_upload(file: UploadFile, path: Path) -> Path:
    """Copy an upload to `path`, a megabyte at a time."""
    with path.open("wb") as out:
        while chunk := file.file.read(1 << 20):
            out.write(chunk)
    return path


def forbidden(e: Forbidden) -> ApiError:
    """403 with the rows concerned (at most 1,000)."""
    items = [ProblemItem(**p.as_dict()) for p in e.problems[:1000]]  # type: ignore[arg-type]
    return ApiError(403, e.message_zh, e.message_en, items)


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
