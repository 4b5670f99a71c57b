"""`Server-Timing: app;dur=MS` on every response: how long the server took to answer (from
the request reaching the app to the response's headers), for an admin's browser tools and
for the page benchmark (benchmarks/web_pages.py). A plain ASGI wrapper: no per-request task."""

from __future__ import annotations

import time
from typing import Any

Scope = dict[str, Any]


class ServerTiming:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={took:.1f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed_send)
