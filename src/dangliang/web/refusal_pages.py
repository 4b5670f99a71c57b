"""Refusals as pages.

The API and the workbench share one app. Under `/api/` an error stays the API's
`application/problem+json`; anywhere else it is a page in the viewer's language with the
same status (403, 404, 409, 422), and a missing session sends a page to the sign-in form (a
script's request gets 401, so it can say so instead of following a redirect).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from dangliang.api.refusals import domain_status
from dangliang.api.upload_limit import CLOSE, BodyTooLarge
from dangliang.domain.errors import DomainError
from dangliang.domain.problems import ProblemsFound
from dangliang.web.guard import (
    PASSWORD_PAGE,
    PageError,
    PasswordChangeNeeded,
    SignInNeeded,
    next_link,
)
from dangliang.web.rendering import render

log = logging.getLogger(__name__)
Handler = Callable[[Request, Any], Awaitable[Response]]

TITLES = {
    400: ("请求无效", "Bad request"),
    401: ("请先登录", "Please sign in"),
    403: ("无权限", "Forbidden"),
    404: ("未找到", "Not found"),
    405: ("不支持的操作", "Method not allowed"),
    409: ("当前状态不允许此操作", "Not allowed in this state"),
    413: ("文件过大", "File too large"),
    422: ("输入有误", "Invalid input"),
}


FRAGMENT = "text/html-fragment"  # what static/app.js asks for when it refreshes a part


def wants_fragment(request: Request) -> bool:
    return FRAGMENT in request.headers.get("accept", "")


def wants_page(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.method == "GET" and "text/html" in accept and not wants_fragment(request)


def error_page(
    request: Request, status: int, message_zh: str, message_en: str, problems: Any = ()
) -> Response:
    title = TITLES.get(status, ("出错了", "Error"))
    return render(
        request,
        "error_fragment.html" if wants_fragment(request) else "error.html",
        status=status,
        status_code=status,
        title_zh=title[0],
        title_en=title[1],
        message_zh=message_zh,
        message_en=message_en,
        problems=list(problems),
    )


def install(site: FastAPI) -> None:
    """Page handlers beside the API's (which stay in charge under /api/)."""

    def for_pages(kind: type[Exception], page: Handler) -> None:
        api_handler: Handler | None = site.exception_handlers.get(kind)  # type: ignore[assignment]

        async def dispatch(request: Request, error: Any) -> Response:
            if api_handler is not None and request.url.path.startswith("/api/"):
                return await api_handler(request, error)
            return await page(request, error)

        site.add_exception_handler(kind, dispatch)

    async def sign_in(request: Request, e: SignInNeeded) -> Response:
        if wants_page(request):
            return RedirectResponse(next_link(e.next_path), status_code=303)
        return error_page(request, 401, "登录已过期，请重新登录", "your session has expired")

    async def change_password(request: Request, _: PasswordChangeNeeded) -> Response:
        return RedirectResponse(PASSWORD_PAGE, status_code=303)

    async def refused(request: Request, e: PageError) -> Response:
        return error_page(request, e.status, e.message_zh, e.message_en)

    async def problems(request: Request, e: ProblemsFound) -> Response:
        return error_page(
            request,
            422,
            f"已拒收：共 {len(e.problems)} 个问题，未写入任何数据",
            f"refused: {len(e.problems)} problem(s); nothing was written",
            e.problems,
        )

    async def domain(request: Request, e: DomainError) -> Response:
        return error_page(request, domain_status(e), e.message_zh, e.message_en)

    async def too_large(request: Request, e: BodyTooLarge) -> Response:
        page = error_page(request, 413, e.message_zh, e.message_en)
        page.headers.update(CLOSE)  # the rest of the body is not read: close, do not drain
        return page

    async def http(request: Request, e: StarletteHTTPException) -> Response:
        detail = str(e.detail)
        return error_page(request, e.status_code, detail, detail)

    async def validation(request: Request, e: RequestValidationError) -> Response:
        parts = [".".join(str(p) for p in err.get("loc", ())[1:]) for err in e.errors()]
        where = "、".join(p for p in parts if p) or "?"
        return error_page(request, 422, f"请求参数有误：{where}", f"invalid request: {where}")

    site.add_exception_handler(SignInNeeded, sign_in)  # type: ignore[arg-type]
    site.add_exception_handler(PasswordChangeNeeded, change_password)  # type: ignore[arg-type]
    site.add_exception_handler(PageError, refused)  # type: ignore[arg-type]
    for kind, handler in (
        (ProblemsFound, problems),
        (DomainError, domain),
        (BodyTooLarge, too_large),
        (StarletteHTTPException, http),
        (RequestValidationError, validation),
    ):
        for_pages(kind, handler)  # type: ignore[arg-type]
