"""Audit (审计): the log's state, and verifying its hash chain from the browser.

- `GET /audit` (admin, auditor): the log's head position, how far each read model has
  caught up, and a form to verify the chain (optionally against a chain head printed on a
  signed document, `POSITION:SHA256`).
- `POST /audit/verify`: recomputes the hash chain over every stored event and checks every
  payout run's recorded chain head against it (`Dangliang.verify_log`); the page shows the
  verdict, how many events were checked, the head (position and hash) and, when something
  is wrong, the first problem and the list. About 6 s for a million records; the button
  says so while it works.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from dangliang.application.accounts import Principal
from dangliang.web.guard import AUDIT, Service, form, page
from dangliang.web.rendering import render

router = APIRouter()


@router.get("/audit")
def audit_page(
    request: Request, app: Service, _: Annotated[Principal, Depends(page(*AUDIT))]
) -> Response:
    return render(request, "audit/index.html", status_view=app.projection_status(), result=None)


@router.post("/audit/verify")
def verify(
    request: Request,
    app: Service,
    _: Annotated[Principal, Depends(form(*AUDIT))],
    expected_head: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    result = app.verify_log(expected_head=expected_head.strip() or None)
    return render(
        request,
        "audit/index.html",
        status_view=app.projection_status(),
        result=result,
        expected_head=expected_head.strip(),
    )
