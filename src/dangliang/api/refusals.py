"""Errors as structured problem lists (RFC 9457-style `application/problem+json`).

Every refusal has the same shape: a status, a bilingual message and, for a refused file or
request, every problem found (file, row, column, reason). Bad input is 422, a state that does
not allow the command 409, something missing 404, a role not allowed 403, no or a bad token
401, a body that cannot be parsed at all (not JSON, broken multipart) 400, a body over the
upload limit 413 (`api.upload_limit`). Only a bug gives 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from dangliang.api.upload_limit import CLOSE, BodyTooLarge
from dangliang.application.uploads import Forbidden
from dangliang.domain.errors import DomainError, InvalidValue, NotFound
from dangliang.domain.payout import PayoutRefused
from dangliang.domain.problems import ProblemsFound
from dangliang.domain.users import UserRefused
from dangliang.settings import SettingsError

TITLES = {
    400: "请求无效 / bad request",
    401: "未认证 / not authenticated",
    403: "无权限 / forbidden",
    404: "未找到 / not found",
    405: "方法不允许 / method not allowed",
    409: "冲突 / conflict",
    413: "文件过大 / file too large",
    422: "输入有误 / invalid input",
}
PROBLEM_JSON = "application/problem+json"


class ProblemItem(BaseModel):
    """One thing wrong: where (file, row, column) and why."""

    file: str | None = None
    row: int | None = None
    column: str | None = None
    message_zh: str
    message_en: str


class ProblemDetail(BaseModel):
    """A refused request; nothing was written."""

    status: int
    title: str
    message_zh: str
    message_en: str
    problems: list[ProblemItem] = Field(default_factory=list)


class ApiError(Exception):
    """Raised by the API's own checks (authentication, roles, scope)."""

    def __init__(
        self,
        status: int,
        message_zh: str,
        message_en: str,
        problems: list[ProblemItem] | None = None,
        headers: dict[str, str] | None = None,
    ):
        self.status = status
        self.message_zh = message_zh
        self.message_en = message_en
        self.problems = problems or []
        self.headers = headers
        super().__init__(f"{message_zh} / {message_en}")


def too_large(e: BodyTooLarge) -> JSONResponse:
    """413: the body is over its limit (`upload_limit`); the connection is closed after it."""
    return problem_response(413, e.message_zh, e.message_en, headers=CLOSE)


def problem_response(
    status: int,
    message_zh: str,
    message_en: str,
    problems: list[ProblemItem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ProblemDetail(
        status=status,
        title=TITLES.get(status, "错误 / error"),
        message_zh=message_zh,
        message_en=message_en,
        problems=problems or [],
    )
    return JSONResponse(
        body.model_dump(),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def domain_status(error: DomainError) -> int:
    if isinstance(error, Forbidden):
        return 403
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, InvalidValue):
        return 422
    if isinstance(error, PayoutRefused | UserRefused):
        return 409
    return 422


def install(app: FastAPI) -> None:
    """Map every expected error to its status and the problem shape."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, e: ApiError) -> JSONResponse:
        return problem_response(e.status, e.message_zh, e.message_en, e.problems, e.headers)

    @app.exception_handler(ProblemsFound)
    async def _problems(_: Request, e: ProblemsFound) -> JSONResponse:
        items = [ProblemItem(**p.as_dict()) for p in e.problems]  # type: ignore[arg-type]
        return problem_response(
            422,
            f"已拒收：共 {len(items)} 个问题，未写入任何数据",
            f"refused: {len(items)} problem(s); nothing was written",
            items,
        )

    @app.exception_handler(DomainError)
    async def _domain(_: Request, e: DomainError) -> JSONResponse:
        return problem_response(domain_status(e), e.message_zh, e.message_en)

    @app.exception_handler(SettingsError)
    async def _settings(_: Request, e: SettingsError) -> JSONResponse:
        return problem_response(422, f"设置有误：{e}", f"invalid setting: {e}")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError) -> JSONResponse:
        items = [_validation_item(err) for err in e.errors()]
        return problem_response(
            422,
            f"请求有 {len(items)} 处错误",
            f"the request has {len(items)} problem(s)",
            items,
        )

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_: Request, e: BodyTooLarge) -> JSONResponse:
        return too_large(e)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        detail = str(e.detail)
        headers = dict(e.headers) if e.headers else None
        return problem_response(e.status_code, detail, detail, headers=headers)


def _validation_item(err: dict[str, Any]) -> ProblemItem:
    """`('query', 'period')` → column `period`; the body's fields as `body.changes.0.path`."""
    loc = [str(part) for part in err.get("loc", ())]
    where = ".".join(loc[1:]) if len(loc) > 1 and loc[0] in ("query", "path") else ".".join(loc)
    message = str(err.get("msg", "invalid"))
    return ProblemItem(column=where or None, message_zh=f"无效：{message}", message_en=message)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetail, "description": TITLES[status]}
    for status in (400, 401, 403, 404, 409, 422)
}
UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {
        "model": ProblemDetail,
        "description": TITLES[413] + " (DANGLIANG_MAX_UPLOAD_MB, 512 MB unless set)",
    }
}
"""What an upload route answers besides `ERROR_RESPONSES`."""


def document_problem_json(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with every refusal under `application/problem+json`, as sent
    (FastAPI documents all of a route's responses under the route's own media type)."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400 and response.get("content"):
                    response["content"] = {PROBLEM_JSON: next(iter(response["content"].values()))}
    return schema
