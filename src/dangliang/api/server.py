"""How `dangliang serve` runs the app: uvicorn, with Nagle's algorithm off on every connection.

With more than one worker, uvicorn binds the shared socket without naming the protocol, so
asyncio does not switch Nagle's algorithm off on accepted connections (it does so only for
sockets whose protocol is TCP), and every response on a keep-alive connection waits ~40 ms
for the client's delayed ACK (Kludex/uvicorn#3149; measured in BENCHMARKS.md). The protocol
below sets TCP_NODELAY itself, as asyncio would have done.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
