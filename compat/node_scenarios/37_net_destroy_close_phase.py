"""37_net_destroy_close_phase.js: socket.destroy() closes the handle with uv_close, so 'close'
is emitted from the close-callbacks phase, after the immediate queued at the same time (the
check phase comes first; R25). The 0 ms timer and the server side's 'close' race.

``socket.destroy()`` is ``transport.abort()`` (close now, drop the write buffer); 'close' is
``connection_lost``; see 36 for the other counterparts."""

import asyncio
from typing import cast

from _scenario import log, print_out, run

from phaseloop import node

server: asyncio.Server | None = None


class ServerSide(asyncio.Protocol):
    def connection_lost(self, exc: Exception | None) -> None:
        log("s-close")
        assert server is not None
        server.close()


class ClientSide(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        log("c-connect")
        cast(asyncio.Transport, transport).abort()
        log("after-destroy")
        node.next_tick(lambda: log("tick"))
        node.set_immediate(lambda: log("immediate"))
        node.set_timeout(lambda: log("timeout0"), 0)

    def connection_lost(self, exc: Exception | None) -> None:
        log("c-close")


async def listen() -> None:
    global server
    loop = asyncio.get_running_loop()
    server = await loop.create_server(ServerSide, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop.create_task(loop.create_connection(ClientSide, "127.0.0.1", port))


def main() -> None:
    asyncio.get_running_loop().create_task(listen())


run(main)
print_out()
