"""`dangliang serve` switches Nagle's algorithm off itself: with several workers uvicorn binds
a socket whose protocol is 0, and asyncio then leaves it on (each keep-alive response waited
~40 ms for a delayed ACK; see BENCHMARKS.md)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from dangliang.api import create_app
from dangliang.api.server import NoDelayH11Protocol


async def nodelay_of_accepted(protocol: type[H11Protocol]) -> int:
    """TCP_NODELAY of a connection accepted on a socket bound as uvicorn's workers bind it."""
    loop = asyncio.get_running_loop()
    listening = socket.socket(family=socket.AF_INET)  # protocol 0, as in uvicorn's bind_socket
    listening.bind(("127.0.0.1", 0))
    config = Config(app=create_app, factory=True)
    made: list[H11Protocol] = []

    def factory() -> H11Protocol:
        made.append(protocol(config=config, server_state=ServerState(), app_state={}))
        return made[-1]

    server = await loop.create_server(factory, sock=listening)
    try:
        _, writer = await asyncio.open_connection(*listening.getsockname())
        for _ in range(100):
            if made and made[0].transport is not None:
                break
            await asyncio.sleep(0.01)
        sock = made[0].transport.get_extra_info("socket")
        value = int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()
        return value
    finally:
        server.close()


@pytest.mark.parametrize(("protocol", "expected"), [(H11Protocol, 0), (NoDelayH11Protocol, 1)])
def test_nagle_is_off_on_every_connection(protocol: type[H11Protocol], expected: int) -> None:
    assert asyncio.run(nodelay_of_accepted(protocol)) == expected
