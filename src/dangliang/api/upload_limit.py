"""How large a request body the server takes: an upload up to `DANGLIANG_MAX_UPLOAD_MB`
(default 512 MB), any other body up to 1 MB.

An upload is a `multipart/form-data` POST to one of the upload routes
(`app.state.upload_routes`: the API's `/imports/{kind}` and `/insurance/imports/{kind}`, the
workbench's `/imports`): the form parser streams its file to an anonymous temporary file
(Starlette's `UploadFile`, at most 1 MB in memory), so it may be large. Every other body —
JSON, a sign-in form — is read into memory whole before it is parsed (a 300 MB JSON body took
a server from 90 to 992 MiB, see BENCHMARKS.md), so it gets `MAX_OTHER_BODY`, and so does a
multipart body sent anywhere else.

`BodyLimit` is a plain ASGI wrapper around the whole app (the API and the workbench). It
counts the bytes of each request's body as the app reads them and refuses the request with
413 as soon as the count passes the limit, before the app sees the byte that is too many — so
a client that sends more than its `Content-Length` promised, or sends `Transfer-Encoding:
chunked` without a length, is cut off at the limit all the same. A request whose
`Content-Length` is already over the limit is refused when the app first asks for its body,
before anything is read (and before a `100 Continue` would be sent).

The refusal is `BodyTooLarge`, an `HTTPException` raised inside the app's reading of the body:
the form parser closes (and so deletes) what it had spooled, the route never runs, and
nothing is imported; the API answers `application/problem+json`, the workbench a page
(`web.refusal_pages`), both with `Connection: close`, so the connection is closed once the
answer is sent instead of reading the rest of the body.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.exceptions import HTTPException

from dangliang.settings import SettingsError

ENV_MAX_UPLOAD = "DANGLIANG_MAX_UPLOAD_MB"
DEFAULT_MAX_UPLOAD_MB = 512
MB = 1024 * 1024
MAX_OTHER_BODY = 1 * MB
"""Any body but an upload: JSON, a form without a file (read into memory whole)."""
CLOSE = {"Connection": "close"}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def max_upload_bytes(environ: MutableMapping[str, str] | None = None) -> int:
    """`DANGLIANG_MAX_UPLOAD_MB` in bytes (a positive number of megabytes, 1 MB = 2**20 bytes,
    fractions allowed: `0.5`); 512 MB when it is not set. Anything else is a `SettingsError`."""
    text = (os.environ if environ is None else environ).get(ENV_MAX_UPLOAD, "").strip()
    if not text:
        return DEFAULT_MAX_UPLOAD_MB * MB
    try:
        megabytes = Decimal(text)
    except InvalidOperation:
        megabytes = Decimal(0)
    if not megabytes.is_finite() or megabytes <= 0:
        raise SettingsError(
            f"{ENV_MAX_UPLOAD} 应为正数（兆字节），而不是 {text!r} / "
            f"{ENV_MAX_UPLOAD} must be a positive number of megabytes, not {text!r}"
        )
    return max(1, int(megabytes * MB))


def shown(limit: int) -> str:
    """A limit as people read it: `512 MB`, `0.5 MB`, `100 KB`."""
    if limit >= MB:
        return f"{Decimal(limit) / MB:.1f}".removesuffix(".0") + " MB"
    return f"{Decimal(limit) / 1024:.1f}".removesuffix(".0") + " KB"


class BodyTooLarge(HTTPException):
    """A request body over the limit (413): an upload's, or any other body's."""

    def __init__(self, limit: int, *, upload: bool = True):
        self.limit = limit
        if upload:
            self.message_zh = (
                f"上传的文件过大：超过上限 {shown(limit)}，未导入任何数据；请拆分后分批上传"
            )
            self.message_en = (
                f"the upload is too large: over the limit of {shown(limit)}; nothing was "
                "imported (split the file and upload the parts)"
            )
        else:
            self.message_zh = f"请求内容过大：超过上限 {shown(limit)}（上传文件请用导入）"
            self.message_en = (
                f"the request body is too large: over the limit of {shown(limit)} "
                "(files are uploaded to the imports)"
            )
        super().__init__(413, f"{self.message_zh} / {self.message_en}", headers=CLOSE)


def content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def is_upload(scope: Scope, routes: Sequence[re.Pattern[str]]) -> bool:
    """A `multipart/form-data` POST to one of `routes` (full matches of the path)."""
    if scope.get("method") != "POST" or not any(r.fullmatch(scope["path"]) for r in routes):
        return False
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return bytes(value).lower().startswith(b"multipart/form-data")
    return False


class BodyLimit:
    """Refuse a request body over its limit as the app reads it (see the module): `max_bytes`
    for an upload to one of `routes` (a list the caller may extend), `MAX_OTHER_BODY` (or
    `max_bytes` when smaller) for anything else."""

    def __init__(
        self,
        app: App,
        max_bytes: int,
        routes: list[re.Pattern[str]],
        refusal: Callable[[BodyTooLarge], App],
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.routes = routes
        self.refusal = refusal  # the 413 answer (an ASGI app), from the API's refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = is_upload(scope, self.routes)
        limit = self.max_bytes if upload else min(self.max_bytes, MAX_OTHER_BODY)
        declared = content_length(scope)
        received = 0

        async def limited() -> Message:
            nonlocal received
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit, upload=upload)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, upload=upload)
            return message

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BodyTooLarge as e:  # read outside the routes' error handling (none does today)
            if started:
                raise
            await self.refusal(e)(scope, receive, send)
