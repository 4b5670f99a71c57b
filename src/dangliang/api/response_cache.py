"""Answers kept per log position (按日志位置缓存): a figure at position P never changes.

The county-wide reads — a year's equivalents, a computation, a run and its statement, an
explanation, the fund's figures — are pure functions of the log at a position, the caller's
role and scope, and the request. This middleware keeps the bytes of each such answer under
(path, query, token, format) together with the log head it was computed at; a later request
with the same key is answered from memory **only while the log's head is still that
position** (read per request: one indexed `max()`), so a write, a correction, a new policy
value or a revoked user moves the head and every kept answer is recomputed at the new one.

A kept answer also stops at the expiry of the token it was made for: the authentication
dependency puts that moment into the request's state (`CACHE_UNTIL`), and without it nothing is
kept. Only `200` answers of the listed GET routes are kept; nothing else passes through here
differently. The cache is per worker process, bounded in entries and bytes (least recently used
first out). Requests that arrive while the same answer is being computed wait for it instead
of computing it again (50 clients asking at once for a year's equivalents compute it once).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CACHE_UNTIL = "cache_until"  # request.state key: the token's expiry (datetime) or FOREVER
FOREVER = datetime.max.replace(tzinfo=UTC)
HEADER = b"x-dangliang-cache"  # "hit" or "miss": told to the client, for benchmarks and tests

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


@dataclass
class Kept:
    head: int
    until: datetime
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class PositionCache:
    """Pure ASGI middleware (no per-request objects on a hit: a hit is ~0.1 ms of Python)."""

    def __init__(
        self,
        app: Any,
        *,
        head: Callable[[Scope], int],
        routes: list[re.Pattern[str]],
        max_entries: int = 512,
        max_bytes: int = 128 * 2**20,
    ):
        self.app = app
        self.head = head
        self.routes = routes
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.kept: OrderedDict[bytes, Kept] = OrderedDict()
        self.size = 0
        self.lock = threading.Lock()
        self.hits = self.misses = 0
        # answers being computed, by (key, head): concurrent first requests wait for one
        self.inflight: dict[tuple[bytes, int], asyncio.Event] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not self._listed(scope):
            await self.app(scope, receive, send)
            return
        key = _key(scope)
        if key is None:  # no token: the route refuses it, nothing to keep
            await self.app(scope, receive, send)
            return
        head = self.head(scope)
        found = self._get(key, head)
        if found is not None:
            self.hits += 1
            await self._send(found, send)
            return
        waiting = self.inflight.get((key, head))
        if waiting is not None:  # the same answer is being computed: wait for it, not again
            await waiting.wait()
            found = self._get(key, head)
            if found is not None:
                self.hits += 1
                await self._send(found, send)
                return
        self.misses += 1
        computing = self.inflight[(key, head)] = asyncio.Event()
        try:
            await self._answer_and_keep(scope, receive, send, key, head)
        finally:
            computing.set()
            self.inflight.pop((key, head), None)

    @staticmethod
    async def _send(found: Kept, send: Send) -> None:
        start = {"type": "http.response.start", "status": found.status}
        await send({**start, "headers": [*found.headers, (HEADER, b"hit")]})
        await send({"type": "http.response.body", "body": found.body})

    def _listed(self, scope: Scope) -> bool:
        path = scope["path"]
        return any(r.fullmatch(path) for r in self.routes)

    def _get(self, key: bytes, head: int) -> Kept | None:
        with self.lock:
            found = self.kept.get(key)
            if found is None:
                return None
            if found.head != head or found.until <= datetime.now(UTC):
                self._drop(key)
                return None
            self.kept.move_to_end(key)
            return found

    async def _answer_and_keep(
        self, scope: Scope, receive: Receive, send: Send, key: bytes, head: int
    ) -> None:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                message = {**message, "headers": [*message.get("headers", []), (HEADER, b"miss")]}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self._keep(scope, key, head, start, b"".join(chunks))
            await send(message)

        await self.app(scope, receive, capture)

    def _keep(
        self, scope: Scope, key: bytes, head: int, start: dict[str, Any], body: bytes
    ) -> None:
        until = scope.get("state", {}).get(CACHE_UNTIL)
        if start.get("status") != 200 or until is None or len(body) > self.max_bytes // 8:
            return
        kept = Kept(head, until, 200, list(start.get("headers", [])), body)
        with self.lock:
            self._drop(key)
            self.kept[key] = kept
            self.size += len(body)
            while self.kept and (len(self.kept) > self.max_entries or self.size > self.max_bytes):
                self._drop(next(iter(self.kept)))

    def _drop(self, key: bytes) -> None:
        found = self.kept.pop(key, None)
        if found is not None:
            self.size -= len(found.body)

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self.kept),
            "bytes": self.size,
            "hits": self.hits,
            "misses": self.misses,
        }


def _key(scope: Scope) -> bytes | None:
    """(path, query, token, accepted format) as one digest; None without a token."""
    headers = dict(scope["headers"])
    token = headers.get(b"authorization")
    if not token:
        return None
    parts = (
        scope["path"].encode(),
        scope.get("query_string", b""),
        token,
        headers.get(b"accept", b""),
    )
    return hashlib.sha256(b"\0".join(parts)).digest()


def cached_routes(prefix: str) -> list[re.Pattern[str]]:
    """The reads whose answer depends only on the log position, the caller and the request
    (never on today's date or the clock): see the module docstring."""
    names = (
        r"/equivalents",
        r"/records",
        r"/compensation",
        r"/distribution",
        r"/explain/(institution|staff)/[^/]+",
        r"/payout-runs",
        r"/payout-runs/[^/]+",
        r"/payout-runs/[^/]+/(statement|sheets/[^/]+)",
        r"/insurance/(figures|communities|runs|explain/[^/]+|records/[^/]+)",
        r"/insurance/runs/[^/]+(/statement)?",
    )
    return [re.compile(re.escape(prefix) + name) for name in names]
